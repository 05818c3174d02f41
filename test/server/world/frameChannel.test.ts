import { describe, expect, it } from 'vitest';
import { FrameChannel } from '../../../server/world/frameChannel.ts';

const frame = (i: number): Uint8Array => Uint8Array.of(i);

describe('FrameChannel', () => {
  it('keeps two frames in flight, queues at most its capacity and sends the newest when acknowledged', () => {
    const sent: number[] = [];
    const acks: ((acknowledged: boolean) => void)[] = [];
    const channel = new FrameChannel((bytes, onAck) => {
      sent.push(bytes[0]!);
      acks.push(onAck);
    }, 2);
    for (let i = 0; i < 6; i++) channel.push(frame(i));
    expect(sent).toEqual([0, 1]);
    expect(channel.queued).toBe(2);
    expect(channel.dropped).toBe(2);
    acks.shift()!(true);
    expect(sent).toEqual([0, 1, 4]);
    acks.shift()!(true);
    acks.shift()!(true);
    expect(sent).toEqual([0, 1, 4, 5]);
    expect(channel.queued).toBe(0);
  });

  it('sends nothing after close, and close is idempotent', () => {
    const sent: number[] = [];
    const channel = new FrameChannel((bytes) => sent.push(bytes[0]!), 2);
    channel.push(frame(1));
    channel.close();
    channel.close();
    channel.push(frame(2));
    expect(sent).toEqual([1]);
  });

  it('refuses a capacity below one', () => {
    expect(() => new FrameChannel(() => {}, 0)).toThrow(RangeError);
  });
});
