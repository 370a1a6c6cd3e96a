#!/bin/sh
# The kubelet's cgroupRoot must exist in every cgroup hierarchy before it starts (ExecStartPre of kubelet.service);
# cgroup v1 cpuset children need their cpus and mems filled in from the parent.
set -eu
root=${1#/}
[ -n "$root" ] || exit 0
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    mkdir -p "/sys/fs/cgroup/$root"
    exit 0
fi
for hierarchy in /sys/fs/cgroup/*/; do
    # Only mounted hierarchies (a plain folder beside them, such as an empty cpu,cpuacct, is not one).
    [ -f "${hierarchy}cgroup.procs" ] || continue
    mkdir -p "$hierarchy$root"
    for file in cpuset.cpus cpuset.mems; do
        if [ -f "$hierarchy$root/$file" ] && [ -z "$(cat "$hierarchy$root/$file")" ]; then
            cat "$hierarchy$file" > "$hierarchy$root/$file"
        fi
    done
done
