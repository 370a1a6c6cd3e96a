// Command slipway-netpol runs the NetworkPolicy enforcer of sigs.k8s.io/kube-network-policies (v0.8.0, pinned in
// go.mod) on the stack's real node, outside the cluster: the upstream command reads only the in-cluster service
// account, this one reads a kubeconfig. It enforces NetworkPolicies for the pods of one node (--node), with nftables
// and an nfqueue in the network namespace it runs in, where the node's pod bridge is.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"sigs.k8s.io/kube-network-policies/pkg/networkpolicy"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of an identity that may list and watch pods, namespaces and networkpolicies")
	node := flag.String("node", "slipway-real-0", "the node whose pods are enforced")
	queue := flag.Int("nfqueue-id", 98, "the nfqueue the packets to judge are sent to")
	failOpen := flag.Bool("fail-open", true, "let packets through while the enforcer is not running (a shared machine: a stopped enforcer must not cut the pods off)")
	metrics := flag.String("metrics-bind-address", "127.0.0.1:19080", "where /metrics is served (loopback only)")
	klog.InitFlags(nil)
	flag.Parse()
	if *kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "slipway-netpol: --kubeconfig is required")
		os.Exit(2)
	}
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		klog.Fatalf("reading %s: %v", *kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		klog.Fatalf("client: %v", err)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	factory := informers.NewSharedInformerFactory(client, 0)
	controller, err := networkpolicy.NewController(client,
		factory.Networking().V1().NetworkPolicies(), factory.Core().V1().Namespaces(), factory.Core().V1().Pods(),
		nil, nil, nil, nil,
		networkpolicy.Config{FailOpen: *failOpen, QueueID: *queue, NodeName: *node, NetfilterBug1766Fix: true,
			NFTableName: "slipway-netpol", NRIdisabled: true})
	if err != nil {
		klog.Fatalf("network policy controller: %v", err)
	}
	http.Handle("/metrics", promhttp.Handler())
	go func() { klog.Error(http.ListenAndServe(*metrics, nil)) }()
	go func() {
		if err := controller.Run(ctx); err != nil {
			klog.Error(err)
			cancel()
		}
	}()
	factory.Start(ctx.Done())
	klog.Infof("slipway-netpol: enforcing NetworkPolicies for the pods of node %s (nfqueue %d)", *node, *queue)
	<-ctx.Done()
	time.Sleep(2 * time.Second) // the controller removes its nftables table on the way out
}
