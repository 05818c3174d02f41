// What shared/ may assume of every runtime it runs in (Node >= 20, browsers, workers): the WHATWG
// Encoding API and nothing else. tsconfig.shared.json compiles shared/ with neither DOM nor Node
// types plus this file. The declarations copy lib.dom.d.ts's, so they merge with DOM's and
// @types/node's in the main tsconfig.
interface TextDecoderOptions {
  fatal?: boolean;
  ignoreBOM?: boolean;
}
interface TextDecodeOptions {
  stream?: boolean;
}
interface TextEncoder {
  encode(input?: string): Uint8Array<ArrayBuffer>;
}
declare var TextEncoder: {
  prototype: TextEncoder;
  new (): TextEncoder;
};
interface TextDecoder {
  decode(input?: ArrayBufferView | ArrayBufferLike, options?: TextDecodeOptions): string;
}
declare var TextDecoder: {
  prototype: TextDecoder;
  new (label?: string, options?: TextDecoderOptions): TextDecoder;
};
