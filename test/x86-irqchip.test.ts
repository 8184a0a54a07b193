import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { expect } from 'chai';
import { BackendSkip, type Backend } from '../adapters/backend.ts';
import { processFactory } from '../adapters/process.ts';
import { createReferenceBackend } from '../adapters/reference.ts';
import { KvmSession } from '../harness/session.ts';
import { loadSpec } from '../harness/spec/loader.ts';

const spec = loadSpec();
const MASKED = 1n << 16n;

/**
 * A VM with an irqchip and a vCPU, IOAPIC pin 17 unmasked, then GSI 17 raised: upstream would deliver the
 * request to the vCPU's local APIC, which neither the reference nor the Python example models.
 */
async function raiseTowardsALocalApic(backend: Backend): Promise<unknown> {
  const kvm = new KvmSession(backend, spec, 'x86_64', 'upstream');
  const vm = await kvm.setupHandle(await kvm.openSystem(), 'KVM_CREATE_VM', 0n);
  await kvm.setup(vm, 'KVM_CREATE_IRQCHIP');
  await kvm.setupHandle(vm, 'KVM_CREATE_VCPU', 0n);
  const redirtbl = new Array<bigint>(24).fill(MASKED);
  redirtbl[17] = 0x30n;
  const set = await kvm.call(vm, 'KVM_SET_IRQCHIP', {
    struct: { chip_id: 2n, base_address: 0xfec0_0000n, redirtbl },
  });
  expect(set.errno).to.equal(null);
  return kvm.call(vm, 'KVM_IRQ_LINE_STATUS', { struct: { irq: 17n, level: 1n } }).catch((e: unknown) => e);
}

describe('x86 irqchip: what the models leave out is a skip with its reason, never a guessed answer', function () {
  this.timeout(30_000);

  it('the reference skips an IOAPIC request that would reach a local APIC', async () => {
    const err = await raiseTowardsALocalApic(createReferenceBackend(spec, 'x86_64'));
    expect(err).to.be.instanceOf(BackendSkip);
    expect((err as Error).message).to.equal(
      'the reference does not model delivery of IOAPIC requests to local APICs',
    );
  });

  it('so does the Python example backend, through the protocol', async function () {
    if (spawnSync('python3', ['--version']).status !== 0) this.skip();
    const script = path.join(import.meta.dirname, '..', 'examples', 'python-backend', 'backend.py');
    const backend = await processFactory({ command: ['python3', script] }).create({
      arch: 'x86_64',
      revision: 'upstream',
    });
    try {
      const err = await raiseTowardsALocalApic(backend);
      expect(err).to.be.instanceOf(BackendSkip);
      expect((err as Error).message).to.contain('does not model delivery of IOAPIC requests to local APICs');
    } finally {
      await backend.dispose();
    }
  });
});
