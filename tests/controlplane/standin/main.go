// A kubelet stand-in for the tests: a virtual-kubelet node (github.com/virtual-kubelet/
// virtual-kubelet) whose pods are directories on this machine. There is no container runtime
// here, so:
//
//   - a pod bound to the node (spec.nodeName) is reported Running and Ready at once, with
//     <root>/<namespace>/<pod>/ as its "container" (made when the pod arrives, removed with it);
//   - exec runs the command as a local process in that directory (stdin, stdout, stderr, or a
//     pty with window sizes when a terminal is asked for); a non-zero exit is returned as
//     k8s.io/utils/exec.CodeExitError, which kube-apiserver reports as the exit code;
//   - logs are <root>/<namespace>/<pod>/<container>.log (tail and follow);
//   - port-forward to port P connects to 127.0.0.1:P, over SPDY (virtual-kubelet's route) and
//     over WebSocket (v4.channel.k8s.io, served here as the real kubelet serves it: the ports
//     come from the request's `ports` query).
//
// kube-apiserver reaches it at 127.0.0.1 (the node's InternalIP) on its daemon endpoint port,
// over TLS verified both ways: the node serves a certificate of the test CA, and only a client
// certificate of that CA (kube-apiserver's --kubelet-client-certificate) is let in.
//
// It prints "ready" on stdout once the node is Ready. It is test support, never shipped.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	dto "github.com/prometheus/client_model/go"
	"github.com/sirupsen/logrus"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	vklog "github.com/virtual-kubelet/virtual-kubelet/log"
	logruslogger "github.com/virtual-kubelet/virtual-kubelet/log/logrus"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	utilexec "k8s.io/utils/exec"
)

type provider struct {
	root   string
	mu     sync.Mutex
	pods   map[string]*corev1.Pod
	notify func(*corev1.Pod)
}

func key(namespace, name string) string { return namespace + "/" + name }

func (p *provider) dir(namespace, name string) string {
	return filepath.Join(p.root, namespace, name)
}

func running(pod *corev1.Pod) {
	now := metav1.Now()
	pod.Status.Phase = corev1.PodRunning
	pod.Status.HostIP = "127.0.0.1"
	pod.Status.HostIPs = []corev1.HostIP{{IP: "127.0.0.1"}}
	pod.Status.PodIP = "127.0.0.1"
	pod.Status.PodIPs = []corev1.PodIP{{IP: "127.0.0.1"}}
	pod.Status.StartTime = &now
	pod.Status.Conditions = nil
	for _, kind := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized,
		corev1.ContainersReady, corev1.PodReady} {
		pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{
			Type: kind, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	pod.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		started := true
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: true, Started: &started,
			ContainerID: "standin://" + key(pod.Namespace, pod.Name) + "/" + c.Name,
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
}

func (p *provider) CreatePod(ctx context.Context, pod *corev1.Pod) error {
	dir := p.dir(pod.Namespace, pod.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, c := range pod.Spec.Containers {
		f, err := os.OpenFile(filepath.Join(dir, c.Name+".log"), os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		f.Close()
	}
	pod = pod.DeepCopy()
	running(pod)
	p.mu.Lock()
	p.pods[key(pod.Namespace, pod.Name)] = pod
	notify := p.notify
	p.mu.Unlock()
	if notify != nil {
		notify(pod.DeepCopy())
	}
	return nil
}

func (p *provider) UpdatePod(ctx context.Context, pod *corev1.Pod) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	old, ok := p.pods[key(pod.Namespace, pod.Name)]
	if !ok {
		return errdefs.NotFound("no such pod")
	}
	updated := pod.DeepCopy()
	updated.Status = old.Status
	p.pods[key(pod.Namespace, pod.Name)] = updated
	return nil
}

// DeletePod reports the pod terminated (the pod controller then deletes the object) and removes
// its directory.
func (p *provider) DeletePod(ctx context.Context, pod *corev1.Pod) error {
	p.mu.Lock()
	stored, ok := p.pods[key(pod.Namespace, pod.Name)]
	delete(p.pods, key(pod.Namespace, pod.Name))
	notify := p.notify
	p.mu.Unlock()
	if !ok {
		return errdefs.NotFound("no such pod")
	}
	_ = os.RemoveAll(p.dir(pod.Namespace, pod.Name))
	done := stored.DeepCopy()
	now := metav1.Now()
	done.Status.Phase = corev1.PodSucceeded
	for i := range done.Status.ContainerStatuses {
		done.Status.ContainerStatuses[i].Ready = false
		done.Status.ContainerStatuses[i].State = corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{Reason: "Deleted", FinishedAt: now}}
	}
	if notify != nil {
		notify(done)
	}
	return nil
}

func (p *provider) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pod, ok := p.pods[key(namespace, name)]
	if !ok {
		return nil, errdefs.NotFound("no such pod")
	}
	return pod.DeepCopy(), nil
}

func (p *provider) GetPodStatus(ctx context.Context, namespace, name string) (*corev1.PodStatus, error) {
	pod, err := p.GetPod(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return pod.Status.DeepCopy(), nil
}

func (p *provider) GetPods(ctx context.Context) ([]*corev1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(p.pods))
	for _, pod := range p.pods {
		out = append(out, pod.DeepCopy())
	}
	return out, nil
}

func (p *provider) NotifyPods(ctx context.Context, notify func(*corev1.Pod)) {
	p.mu.Lock()
	p.notify = notify
	p.mu.Unlock()
}

// container finds the pod's directory for one of its containers, or NotFound.
func (p *provider) container(namespace, name, container string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pod, ok := p.pods[key(namespace, name)]
	if !ok {
		return "", errdefs.NotFound(fmt.Sprintf("pod %s/%s is not on this node", namespace, name))
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == container {
			return p.dir(namespace, name), nil
		}
	}
	return "", errdefs.NotFound(fmt.Sprintf("pod %s/%s has no container %q", namespace, name, container))
}

func (p *provider) RunInContainer(ctx context.Context, namespace, name, container string, argv []string, attach api.AttachIO) error {
	dir, err := p.container(namespace, name, container)
	if err != nil {
		return err
	}
	if len(argv) == 0 {
		return errdefs.InvalidInput("no command")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + dir,
		"POD_NAME=" + name, "POD_NAMESPACE=" + namespace, "CONTAINER_NAME=" + container}
	if attach.TTY() {
		err = runOnTerminal(cmd, attach)
	} else {
		err = runPiped(cmd, attach)
	}
	return exitError(err)
}

func runPiped(cmd *exec.Cmd, attach api.AttachIO) error {
	if out := attach.Stdout(); out != nil {
		cmd.Stdout = out
	}
	if errOut := attach.Stderr(); errOut != nil {
		cmd.Stderr = errOut
	}
	if in := attach.Stdin(); in != nil {
		// Through a pipe of our own: with cmd.Stdin set to a reader, Wait would also wait for
		// the client's stdin to end, even after the command exited.
		pipe, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		go func() {
			_, _ = io.Copy(pipe, in)
			pipe.Close()
		}()
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Wait()
}

func runOnTerminal(cmd *exec.Cmd, attach api.AttachIO) error {
	cmd.Env = append(cmd.Env, "TERM=xterm")
	terminal, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		return err
	}
	defer terminal.Close()
	go func() {
		for size := range attach.Resize() {
			_ = pty.Setsize(terminal, &pty.Winsize{Rows: size.Height, Cols: size.Width})
		}
	}()
	if in := attach.Stdin(); in != nil {
		go func() { _, _ = io.Copy(terminal, in) }()
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		if out := attach.Stdout(); out != nil {
			_, _ = io.Copy(out, terminal) // ends with EIO once the last writer is gone
		} else {
			_, _ = io.Copy(io.Discard, terminal)
		}
	}()
	err = cmd.Wait()
	select {
	case <-copied:
	case <-time.After(2 * time.Second): // a background child still holds the terminal
	}
	return err
}

// exitError turns a command's exit into what kube-apiserver reports as an exit code.
func exitError(err error) error {
	var exited *exec.ExitError
	if !errors.As(err, &exited) {
		return err
	}
	code := exited.ExitCode()
	if status, ok := exited.Sys().(syscall.WaitStatus); ok && status.Signaled() {
		code = 128 + int(status.Signal())
	}
	return utilexec.CodeExitError{Err: err, Code: code}
}

func (p *provider) AttachToContainer(ctx context.Context, namespace, name, container string, attach api.AttachIO) error {
	return errdefs.InvalidInput("attach is not supported by the stand-in")
}

func (p *provider) GetStatsSummary(context.Context) (*statsv1alpha1.Summary, error) {
	return nil, errdefs.InvalidInput("no stats from the stand-in")
}

func (p *provider) GetMetricsResource(context.Context) ([]*dto.MetricFamily, error) {
	return nil, errdefs.InvalidInput("no metrics from the stand-in")
}

func (p *provider) GetContainerLogs(ctx context.Context, namespace, name, container string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	dir, err := p.container(namespace, name, container)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, container+".log"))
	if err != nil {
		return nil, err
	}
	if opts.Tail == 0 && !opts.Follow {
		return io.NopCloser(bytes.NewReader(data)), nil
	}
	start := 0
	if opts.Tail > 0 {
		lines := bytes.SplitAfter(data, []byte("\n"))
		if len(lines[len(lines)-1]) == 0 {
			lines = lines[:len(lines)-1]
		}
		for _, line := range lines[:max(0, len(lines)-opts.Tail)] {
			start += len(line)
		}
	}
	reader, writer := io.Pipe()
	go func() {
		_, err := writer.Write(data[start:])
		offset := int64(len(data))
		for err == nil && opts.Follow {
			select {
			case <-ctx.Done():
				err = ctx.Err()
				continue
			case <-time.After(100 * time.Millisecond):
			}
			var more []byte
			more, err = readFrom(filepath.Join(dir, container+".log"), offset)
			if err == nil && len(more) > 0 {
				offset += int64(len(more))
				_, err = writer.Write(more)
			}
		}
		writer.CloseWithError(err)
	}()
	return reader, nil
}

func readFrom(path string, offset int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(f)
}

func (p *provider) PortForward(ctx context.Context, namespace, name string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	if err != nil {
		return err
	}
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(conn, stream); done <- struct{}{} }()
	go func() { _, _ = io.Copy(stream, conn); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

// websocketPortForward serves port-forward over WebSocket as the kubelet does: for each port in
// the `ports` query a data channel and an error channel, each opened by the port as two
// little-endian bytes.
func (p *provider) websocketPortForward(w http.ResponseWriter, req *http.Request) {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	if len(parts) != 3 {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	namespace, name := parts[1], parts[2]
	if _, err := p.GetPod(req.Context(), namespace, name); err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	var ports []int32
	for _, text := range req.URL.Query()[corev1.PortHeader] {
		for _, one := range strings.Split(text, ",") {
			port, err := strconv.ParseUint(one, 10, 16)
			if err != nil || port == 0 {
				http.Error(w, fmt.Sprintf("bad port %q", one), http.StatusBadRequest)
				return
			}
			ports = append(ports, int32(port))
		}
	}
	if len(ports) == 0 {
		http.Error(w, "query parameter \"ports\" is required", http.StatusBadRequest)
		return
	}
	channels := make([]wsstream.ChannelType, 0, 2*len(ports))
	for range ports {
		channels = append(channels, wsstream.ReadWriteChannel, wsstream.WriteChannel)
	}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		"":                         {Binary: true, Channels: channels},
		"v4.channel.k8s.io":        {Binary: true, Channels: channels},
		"v4.base64.channel.k8s.io": {Binary: false, Channels: channels},
	})
	conn.SetIdleTimeout(4 * time.Hour)
	_, streams, err := conn.Open(w, req)
	if err != nil {
		return
	}
	defer conn.Close()
	var wg sync.WaitGroup
	for i, port := range ports {
		data, errs := streams[2*i], streams[2*i+1]
		prefix := binary.LittleEndian.AppendUint16(nil, uint16(port))
		_, _ = data.Write(prefix)
		_, _ = errs.Write(prefix)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer errs.Close()
			if err := p.PortForward(req.Context(), namespace, name, port, data); err != nil {
				fmt.Fprintf(errs, "error forwarding port %d to pod %s/%s: %v", port, namespace, name, err)
			}
		}()
	}
	wg.Wait()
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of an identity that may manage nodes and pods")
	nodeName := flag.String("node-name", "standin", "the node's name")
	listen := flag.Int("port", 10250, "the kubelet API's port on 127.0.0.1")
	certFile := flag.String("tls-cert", "", "serving certificate (PEM)")
	keyFile := flag.String("tls-key", "", "serving key (PEM)")
	clientCA := flag.String("client-ca", "", "the CA of kube-apiserver's kubelet client certificate")
	root := flag.String("root", "", "directory that holds each pod's directory")
	flag.Parse()
	logger := logrus.StandardLogger()
	logger.SetLevel(logrus.WarnLevel)
	vklog.L = logruslogger.FromLogrus(logrus.NewEntry(logger))
	if *root == "" || *certFile == "" || *keyFile == "" || *clientCA == "" || *kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "standin: --kubeconfig, --root, --tls-cert, --tls-key and --client-ca are required")
		os.Exit(2)
	}
	client, err := nodeutil.ClientsetFromEnv(*kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "standin:", err)
		os.Exit(1)
	}
	p := &provider{root: *root, pods: map[string]*corev1.Pod{}}
	routes := http.NewServeMux()
	handler := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasPrefix(req.URL.Path, "/portForward/") && wsstream.IsWebSocketRequest(req) {
			p.websocketPortForward(w, req)
			return
		}
		routes.ServeHTTP(w, req)
	})
	newProvider := func(cfg nodeutil.ProviderConfig) (nodeutil.Provider, node.NodeProvider, error) {
		status := &cfg.Node.Status
		status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
		status.DaemonEndpoints.KubeletEndpoint.Port = int32(*listen)
		status.NodeInfo = corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", OperatingSystem: "linux",
			Architecture: "amd64"}
		capacity := corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("8"),
			corev1.ResourceMemory: resource.MustParse("16Gi"),
			corev1.ResourcePods:   resource.MustParse("500"),
		}
		status.Capacity, status.Allocatable = capacity, capacity
		return p, nil, nil
	}
	n, err := nodeutil.NewNode(*nodeName, newProvider,
		nodeutil.WithClient(client),
		nodeutil.WithTLSConfig(nodeutil.WithKeyPairFromPath(*certFile, *keyFile),
			nodeutil.WithCAFromPath(*clientCA)),
		nodeutil.AttachProviderRoutes(routes),
		func(cfg *nodeutil.NodeConfig) error {
			cfg.HTTPListenAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(*listen))
			cfg.Handler = handler
			cfg.NumWorkers = 4
			cfg.StreamIdleTimeout = 4 * time.Hour
			return nil
		})
	if err != nil {
		fmt.Fprintln(os.Stderr, "standin:", err)
		os.Exit(1)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	go func() {
		if err := n.Run(ctx); err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "standin: node stopped:", err)
			os.Exit(1)
		}
	}()
	if err := n.WaitReady(ctx, time.Minute); err != nil {
		fmt.Fprintln(os.Stderr, "standin: not ready:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	<-ctx.Done()
}
