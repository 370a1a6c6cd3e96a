#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Both programs know every flag deploy/*.j2 gives them (an unknown flag stops a program before -version answers).
set -u
victoria-logs -storageDataPath=/tmp/unit -httpListenAddr=:9428 -retentionPeriod=7d \
    -retention.maxDiskSpaceUsageBytes=400MiB -version >/dev/null \
    || { echo "FAIL victoria-logs refuses a flag of deploy/deployment.yaml.j2"; exit 1; }
echo "ok   victoria-logs knows the server's flags"
vlagent -kubernetesCollector -kubernetesCollector.logsPath=/var/log/containers \
    -kubernetesCollector.includePodLabels=true -remoteWrite.url=http://logs.logs.svc.cluster.local:9428/insert/native \
    -tmpDataPath=/tmp/unit -httpListenAddr=:9429 -version >/dev/null \
    || { echo "FAIL vlagent refuses a flag of deploy/collector.yaml.j2"; exit 1; }
echo "ok   vlagent knows the collector's flags"
