package main

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

// yamlDocs reads every document of a YAML file as generic maps.
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var docs []map[string]any
	dec := yaml.NewDecoder(f)
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

// at walks a generic YAML value by map keys and list indexes.
func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func strs(v any) []string {
	var out []string
	for _, x := range asList(v) {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func asList(v any) []any { l, _ := v.([]any); return l }

// knownEnv is every variable the binary reads: the flags' and the token.
func knownEnv() map[string]bool {
	known := map[string]bool{"WASMJOBS_TOKEN": true}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if e := flagEnv(f); e != "" {
				known[e] = true
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
	return known
}

// checkArgs parses a container's arguments as the binary would and
// returns the command's flags and its path ("guest push").
func checkArgs(t *testing.T, where string, args []string) (*pflag.FlagSet, string) {
	t.Helper()
	cmd, rest, err := newRootCmd().Find(args)
	if err != nil || cmd == cmd.Root() {
		t.Fatalf("%s: %v is not a wasmjobs command (%v)", where, args, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("%s: %v: %v", where, args, err)
	}
	return cmd.Flags(), strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}

// listenPort is the port of a --addr style flag value.
func listenPort(t *testing.T, where, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s: address %q: %v", where, addr, err)
	}
	return port
}

// TestDeployFiles checks the Kubernetes manifests and docker-compose.yml
// against the binary: every command and flag they pass exists, every
// variable they set is one it reads, the ports they expose are the ones it
// listens on, probes hit its health endpoints without a hard-coded token,
// and KEDA reads the pending list of a queue the workers serve, with
// credentials from the Secret. Guests get registered in both.
func TestDeployFiles(t *testing.T) {
	root := testenv.RepoRoot(t)
	known := knownEnv()
	byKind := map[string][]map[string]any{}
	files, _ := filepath.Glob(filepath.Join(root, "deploy", "k8s", "*.yaml"))
	for _, f := range files {
		for _, d := range yamlDocs(t, f) {
			kind, _ := d["kind"].(string)
			byKind[kind] = append(byKind[kind], d)
		}
	}
	name := func(d map[string]any) string { s, _ := at(d, "metadata", "name").(string); return s }
	secretKeys := map[string]bool{}
	for _, s := range byKind["Secret"] {
		for k := range at(s, "stringData").(map[string]any) {
			secretKeys[k] = true
		}
	}
	for _, kind := range []string{"ConfigMap", "Secret"} {
		for _, d := range byKind[kind] {
			data, _ := at(d, "data").(map[string]any)
			if kind == "Secret" {
				data, _ = at(d, "stringData").(map[string]any)
			}
			for k := range data {
				if !known[k] && k != "REDIS_PASSWORD" {
					t.Errorf("%s %s sets %s, which wasmjobs does not read", kind, name(d), k)
				}
			}
		}
	}

	ran := map[string]*pflag.FlagSet{} // command → flags, per workload
	portNames := map[string]map[string]int{}
	for _, kind := range []string{"Deployment", "Job"} {
		for _, d := range byKind[kind] {
			for i := range asList(at(d, "spec", "template", "spec", "containers")) {
				c := at(d, "spec", "template", "spec", "containers", i)
				where := kind + " " + name(d)
				args := strs(at(c, "args"))
				fs, path := checkArgs(t, where, args)
				ran[path] = fs
				ports := map[string]int{}
				for _, p := range asList(at(c, "ports")) {
					n, _ := at(p, "name").(string)
					ports[n] = at(p, "containerPort").(int)
				}
				portNames[name(d)] = ports
				for _, probe := range []string{"livenessProbe", "readinessProbe"} {
					pr := at(c, probe)
					if pr == nil {
						continue
					}
					if path := at(pr, "httpGet", "path"); path != "/healthz" && path != "/readyz" {
						t.Errorf("%s %s: path %v is not a health endpoint", where, probe, path)
					}
					if _, ok := ports[at(pr, "httpGet", "port").(string)]; !ok {
						t.Errorf("%s %s: port %v is not a declared container port", where, probe, at(pr, "httpGet", "port"))
					}
					if at(pr, "httpGet", "httpHeaders") != nil {
						t.Errorf("%s %s sends headers (a token in a manifest); /readyz needs none", where, probe)
					}
				}
				switch args[0] {
				case "worker":
					if p := listenPort(t, where, fs.Lookup("metrics-addr").Value.String()); p != "9090" || ports["metrics"] != 9090 {
						t.Errorf("%s: metrics on %s, container port metrics %d", where, p, ports["metrics"])
					}
				case "web":
					if p := listenPort(t, where, fs.Lookup("addr").Value.String()); p != "8080" || ports["http"] != 8080 {
						t.Errorf("%s: web on %s, container port http %d", where, p, ports["http"])
					}
				}
			}
		}
	}
	for _, want := range []string{"worker", "web", "guest push"} {
		if ran[want] == nil {
			t.Errorf("no workload runs wasmjobs %s", want)
		}
	}
	if fs := ran["guest push"]; fs != nil && fs.Lookup("builtin").Value.String() != "true" {
		t.Error("the guests Job does not push the shipped guests (--builtin)")
	}
	sameModels(t, "Kubernetes", ran["guest push"], ran["worker"])

	// KEDA: the pending list of a queue the workers serve, the password
	// from the Secret.
	auths := map[string]map[string]any{}
	for _, a := range byKind["TriggerAuthentication"] {
		auths[name(a)] = a
	}
	if len(byKind["ScaledObject"]) == 0 {
		t.Fatal("no ScaledObject")
	}
	for _, so := range byKind["ScaledObject"] {
		if at(so, "spec", "scaleTargetRef", "name") != "wasmjobs-worker" {
			t.Errorf("ScaledObject %s scales %v", name(so), at(so, "spec", "scaleTargetRef", "name"))
		}
		queues := "default=1"
		if fs := ran["worker"]; fs != nil {
			queues = fs.Lookup("queues").Value.String()
		}
		for i := range asList(at(so, "spec", "triggers")) {
			tr := at(so, "spec", "triggers", i)
			list, _ := at(tr, "metadata", "listName").(string)
			q, ok := strings.CutSuffix(strings.TrimPrefix(list, "asynq:{"), "}:pending")
			if !ok || !slices.ContainsFunc(strings.Split(queues, ","), func(s string) bool { return strings.SplitN(s, "=", 2)[0] == q }) {
				t.Errorf("trigger %d reads %q, not the pending list of a queue in --queues %s", i, list, queues)
			}
			ref, _ := at(tr, "authenticationRef", "name").(string)
			a := auths[ref]
			if a == nil {
				t.Errorf("trigger %d: authenticationRef %q names no TriggerAuthentication", i, ref)
				continue
			}
			for j := range asList(at(a, "spec", "secretTargetRef")) {
				key, _ := at(a, "spec", "secretTargetRef", j, "key").(string)
				if !secretKeys[key] {
					t.Errorf("TriggerAuthentication %s reads Secret key %s, which the Secret lacks", ref, key)
				}
			}
		}
	}
	for _, pm := range byKind["PodMonitor"] {
		ep := at(pm, "spec", "podMetricsEndpoints", 0)
		if _, ok := portNames["wasmjobs-worker"][at(ep, "port").(string)]; !ok {
			t.Errorf("PodMonitor scrapes port %v, which the worker does not declare", at(ep, "port"))
		}
		if key, _ := at(ep, "authorization", "credentials", "key").(string); !secretKeys[key] {
			t.Errorf("PodMonitor's token key %q is not in the Secret", key)
		}
	}

	// docker-compose.yml: the same checks on its services.
	compose := yamlDocs(t, filepath.Join(root, "docker-compose.yml"))[0]
	services := at(compose, "services").(map[string]any)
	var pushes bool
	composeRan := map[string]*pflag.FlagSet{}
	for svc := range services {
		if at(services, svc, "image") != "wasmjobs" {
			continue
		}
		args := strs(at(services, svc, "command"))
		fs, _ := checkArgs(t, "compose "+svc, args)
		pushes = pushes || (args[0] == "guest" && fs.Lookup("builtin").Value.String() == "true")
		composeRan[args[0]] = fs
		env, _ := at(services, svc, "environment").(map[string]any)
		for k := range env {
			if !known[k] {
				t.Errorf("compose %s sets %s, which wasmjobs does not read", svc, k)
			}
		}
		if args[0] == "web" {
			want := listenPort(t, "compose web", fs.Lookup("addr").Value.String())
			for _, p := range strs(at(services, svc, "ports")) {
				if !strings.HasSuffix(p, ":"+want) {
					t.Errorf("compose web publishes %s, the server listens on %s", p, want)
				}
			}
		}
	}
	if !pushes {
		t.Error("compose registers no guests")
	}
	sameModels(t, "compose", composeRan["guest"], composeRan["worker"])
}

// sameModels checks that the guest push checks the guests' declared models
// against the models the workers register.
func sameModels(t *testing.T, where string, push, worker *pflag.FlagSet) {
	t.Helper()
	if push == nil || worker == nil {
		return
	}
	for _, f := range []string{"models-config", "model", "nn-preload"} {
		if p, w := push.Lookup(f).Value.String(), worker.Lookup(f).Value.String(); p != w {
			t.Errorf("%s: guest push checks models against --%s %s, the workers register --%s %s", where, f, p, f, w)
		}
	}
}
