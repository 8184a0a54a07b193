import { expect } from 'chai';
import fc from 'fast-check';
import { decodeStruct, encodeStruct, uintToBytes, bytesToUint } from '../harness/abi/codec.ts';
import { pooledBytes, pooledCopy } from '../harness/abi/bytes.ts';
import type { StructLayout } from '../harness/spec/types.ts';

const layout: StructLayout = {
  revision: 'upstream',
  size: 32,
  align: 8,
  fields: [
    { name: 'a', type: 'u64', offset: 0 },
    { name: 'b', type: 'u32', offset: 8 },
    { name: 'c', type: 's16', offset: 12 },
    { name: 'arr', type: 'u8', offset: 14, count: 2 },
    {
      union: 'u',
      offset: 16,
      size: 16,
      members: [
        {
          name: 'logical',
          fields: [
            { name: 'ar', type: 'u8', offset: 16 },
            { name: 'old_addr', type: 'u64', offset: 24 },
          ],
        },
        { name: 'sida', fields: [{ name: 'sida_offset', type: 'u32', offset: 16 }] },
      ],
    },
    { name: 'tail', type: 'u32', offset: 32, flexible: true },
  ],
};

describe('struct codec', () => {
  for (const endian of ['little', 'big'] as const) {
    it(`round-trips every field in ${endian} endian`, () => {
      fc.assert(
        fc.property(
          fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          fc.integer({ min: 0, max: 2 ** 32 - 1 }),
          fc.integer({ min: -32768, max: 32767 }),
          fc.array(fc.bigInt({ min: 0n, max: 2n ** 32n - 1n }), { maxLength: 4 }),
          (a, b, c, tail) => {
            const bytes = encodeStruct(
              layout,
              { a, b: BigInt(b), c: BigInt(c), arr: [1n, 2n], old_addr: a, tail },
              endian,
            );
            expect(bytes.length).to.equal(32 + 4 * tail.length);
            const back = decodeStruct(layout, bytes, endian);
            expect(back.a).to.equal(a);
            expect(back.b).to.equal(BigInt(b));
            expect(back.c).to.equal(BigInt(c));
            expect(back.arr).to.deep.equal([1n, 2n]);
            expect(back.old_addr).to.equal(a);
            expect(back.tail).to.deep.equal(tail);
          },
        ),
      );
    });
  }

  it('places bytes in the arch byte order', () => {
    const le = encodeStruct(layout, { b: 0x01020304n }, 'little');
    const be = encodeStruct(layout, { b: 0x01020304n }, 'big');
    expect([...le.subarray(8, 12)]).to.deep.equal([4, 3, 2, 1]);
    expect([...be.subarray(8, 12)]).to.deep.equal([1, 2, 3, 4]);
  });

  it('reads union members over the same bytes', () => {
    const bytes = encodeStruct(layout, { sida_offset: 0x11223344n }, 'big');
    const back = decodeStruct(layout, bytes, 'big');
    expect(back.ar).to.equal(0x11n);
    expect(back.sida_offset).to.equal(0x11223344n);
  });

  it("keys a union member's field whose name an earlier field has by member.name", () => {
    const clash: StructLayout = {
      ...layout,
      fields: [
        { name: 'flags', type: 'u16', offset: 0 },
        {
          union: 'exit',
          offset: 8,
          size: 16,
          members: [
            { name: 'mmio', fields: [{ name: 'data', type: 'u64', offset: 8 }] },
            { name: 'event', fields: [{ name: 'flags', type: 'u64', offset: 16 }] },
          ],
        },
      ],
    };
    const bytes = encodeStruct(clash, { flags: 1n, 'event.flags': 0x55n }, 'little');
    expect([...bytes.subarray(0, 2)]).to.deep.equal([1, 0]);
    expect(bytes[16]).to.equal(0x55);
    const back = decodeStruct(clash, bytes, 'little');
    expect(back).to.deep.equal({ flags: 1n, data: 0n, 'event.flags': 0x55n });
  });

  it('leaves padding and unnamed gaps zero, and refuses unknown fields', () => {
    const bytes = encodeStruct(layout, { a: 2n ** 64n - 1n }, 'little');
    expect([...bytes.subarray(8)].every((b) => b === 0)).to.equal(true);
    expect(() => encodeStruct(layout, { nope: 1n }, 'little')).to.throw(/no field nope/);
    expect(() => encodeStruct(layout, { arr: [1n, 2n, 3n] }, 'little')).to.throw(/does not fit/);
  });

  it('encodes register values wider than 64 bits', () => {
    const v = 0x00112233445566778899aabbccddeeffn;
    expect(bytesToUint(uintToBytes(v, 16, 'little'), 'little')).to.equal(v);
    expect(uintToBytes(v, 16, 'big')[0]).to.equal(0x00);
    expect(uintToBytes(v, 16, 'little')[0]).to.equal(0xff);
  });
});

describe('pooled bytes', () => {
  it('are plain Uint8Arrays whose slice copies (a Buffer slice would alias the pool)', () => {
    const bytes = pooledBytes(64);
    expect(Buffer.isBuffer(bytes)).to.equal(false);
    expect(bytes.length).to.equal(64);
    const copy = pooledCopy(Uint8Array.of(1, 2, 3));
    const sliced = copy.slice();
    sliced[0] = 9;
    expect([...copy]).to.deep.equal([1, 2, 3]);
  });
});
