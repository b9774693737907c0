import type { ProxyRegistry } from './proxy-status.js';

/**
 * Which VM proxies are connected, for the compiler: a VM's endpoints are
 * sent to callers only while its proxy (node id `NS/SA/vm:NAME`, see `smc vm
 * bundle`) holds a stream, and for `graceMs` after its last stream closed, so
 * a reconnect or a controller replica change does not drop the VM. Only VM
 * streams count: a pod's sidecar connecting never causes a compile.
 *
 * A controller that has just started cannot know which VMs were connected
 * before: for `graceMs` after its start every VM counts as connected
 * (`connected()` is undefined), as if each had just disconnected, so a
 * controller restart does not withdraw VM endpoints while their proxies
 * reconnect.
 */
export function trackVirtualMachines(proxies: ProxyRegistry, graceMs: number, onChange: () => void): { connected(): string[] | undefined; close(): void } {
  const streams = new Map<string, number>();
  const present = new Set<string>();
  const leaving = new Map<string, NodeJS.Timeout>();
  let closed = false;
  let starting = true;
  const started = setTimeout(() => {
    starting = false;
    onChange();
  }, graceMs);
  started.unref();
  proxies.onStream((record, open) => {
    const node = record.nodeId;
    if (closed || !node.split('/')[2]?.startsWith('vm:')) return;
    const n = (streams.get(node) ?? 0) + (open ? 1 : -1);
    if (n > 0) streams.set(node, n);
    else streams.delete(node);
    if (open) {
      clearTimeout(leaving.get(node));
      leaving.delete(node);
      if (!present.has(node)) {
        present.add(node);
        onChange();
      }
    } else if (n === 0) {
      const timer = setTimeout(() => {
        leaving.delete(node);
        present.delete(node);
        onChange();
      }, graceMs);
      timer.unref();
      leaving.set(node, timer);
    }
  });
  return {
    connected: () => (starting ? undefined : [...present].sort()),
    close() {
      closed = true;
      clearTimeout(started);
      for (const t of leaving.values()) clearTimeout(t);
    },
  };
}
