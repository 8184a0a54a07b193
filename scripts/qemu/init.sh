#!/bin/busybox sh
# /init of the QEMU backends' initramfs: load KVM's modules, run the agent on its own virtio-serial port
# (so console messages never mix with protocol lines), power off when it exits. Lines prefixed
# "kvmspec-init:" land in the serial log the harness attaches to errors.
/bin/busybox --install -s /bin
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys

for m in $(cat /modules.order 2>/dev/null); do
  insmod "/lib/modules/$m" || echo "kvmspec-init: insmod $m failed"
done

# The port is found by the name the harness gives it; devtmpfs has no /dev/virtio-ports links (no udev).
port=""
for i in $(seq 1 50); do
  for n in /sys/class/virtio-ports/*/name; do
    [ -f "$n" ] && [ "$(cat "$n")" = "org.kvmspec.agent" ] && port="/dev/$(basename "$(dirname "$n")")"
  done
  [ -n "$port" ] && [ -c "$port" ] && break
  sleep 0.1
done

if [ -z "$port" ]; then
  echo "kvmspec-init: no virtio-serial port named org.kvmspec.agent"
else
  [ -c /dev/kvm ] || echo "kvmspec-init: /dev/kvm is missing"
  echo "kvmspec-init: starting the agent on $port"
  # One open for both directions: a virtio console port admits a single opener.
  /kvmspec-agent 0<>"$port" 1>&0
  echo "kvmspec-init: agent exited with status $?"
fi
poweroff -f
