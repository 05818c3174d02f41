#!/bin/sh
# Runs a command with jemalloc as the memory allocator when the system has it (Debian:
# libjemalloc2), else unchanged. A long-running server on glibc's malloc fragments: in the 20-minute
# soak (`npm run soak`) RSS climbed 27 MiB/min while the V8 heap and external buffers stayed flat;
# with jemalloc it stayed within its band (docs/operations.md, "Memory allocator").
# SPATIA_ALLOCATOR=glibc keeps glibc's malloc.
if [ "${SPATIA_ALLOCATOR:-jemalloc}" = jemalloc ]; then
  for lib in /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 /usr/lib/aarch64-linux-gnu/libjemalloc.so.2 \
    /usr/lib64/libjemalloc.so.2 /usr/lib/libjemalloc.so.2; do
    if [ -e "$lib" ]; then
      LD_PRELOAD="${LD_PRELOAD:+$LD_PRELOAD:}$lib"
      export LD_PRELOAD
      break
    fi
  done
fi
exec "$@"
