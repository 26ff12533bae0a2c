package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestEveryFlagHasEnv: every flag of every command names its environment
// variable in its help, one variable never stands for two different flags,
// and the variables the deploy files and older releases use keep their
// names.
func TestEveryFlagHasEnv(t *testing.T) {
	root := newRootCmd()
	owner := map[string]string{} // variable → flag name
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Name == "help" || f.Name == "version" {
				return
			}
			env := flagEnv(f)
			if env == "" {
				t.Errorf("%s --%s has no environment variable", c.CommandPath(), f.Name)
				return
			}
			if !strings.Contains(f.Usage, "[$"+env+"]") {
				t.Errorf("%s --%s: help %q does not name $%s", c.CommandPath(), f.Name, f.Usage, env)
			}
			if prev, ok := owner[env]; ok && prev != f.Name {
				t.Errorf("$%s stands for both --%s and --%s", env, prev, f.Name)
			}
			owner[env] = f.Name
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	for env, flag := range map[string]string{
		"REDIS_URL": "redis", "S3_ENDPOINT": "s3-endpoint", "S3_SECRET_KEY": "s3-secret-key", "S3_USE_SSL": "s3-use-ssl",
		"ONNXRUNTIME_LIB": "onnxruntime-lib", "WASMJOBS_WEB_ADDR": "addr", "WASMJOBS_CONCURRENCY": "concurrency",
		"WASMJOBS_QUEUES": "queues", "WASMJOBS_MEMORY_LIMIT": "memory-limit", "WASMJOBS_GUEST_TIMEOUT": "guest-timeout",
		"WASMJOBS_NN_THREADS": "nn-threads", "WASMJOBS_READ_ONLY": "read-only", "WASMJOBS_INSECURE": "insecure",
		"WASMJOBS_MAX_RESULT": "max-result", "WASMJOBS_INPUT_ALLOW": "input-allow", "WASMJOBS_BATCH_RUN_WAIT": "wait",
		"WASMJOBS_ENQUEUE_WAIT": "wait",
	} {
		if owner[env] != flag {
			t.Errorf("$%s is for --%q, want --%s", env, owner[env], flag)
		}
	}
}

// findCmd returns the command at path under a fresh root, its flags parsed
// from args.
func findCmd(t *testing.T, args []string, path ...string) *cobra.Command {
	t.Helper()
	cmd, _, err := newRootCmd().Find(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// TestApplyEnv: a variable sets its flag as the flag would parse it (and
// counts as given, for commands that ask); the command line wins; a value
// the flag cannot parse is an error naming the variable, never a silent
// default; a secret's value is not echoed.
func TestApplyEnv(t *testing.T) {
	t.Setenv("WASMJOBS_CONCURRENCY", "7")
	t.Setenv("WASMJOBS_QUEUES", "a=2,b=1")
	t.Setenv("WASMJOBS_GUEST_TIMEOUT", "3s")
	t.Setenv("WASMJOBS_INPUT_ALLOW", "in-a,in-b/x")
	t.Setenv("S3_USE_SSL", "true")
	t.Setenv("WASMJOBS_INSECURE", "1")
	w := findCmd(t, []string{"--queues", "cli=1"}, "worker")
	if err := applyEnv(w); err != nil {
		t.Fatal(err)
	}
	for flag, want := range map[string]string{
		"concurrency": "7", "queues": "cli=1", "guest-timeout": "3s", "input-allow": "[in-a,in-b/x]", "s3-use-ssl": "true", "insecure": "true",
	} {
		if got := w.Flags().Lookup(flag).Value.String(); got != want {
			t.Errorf("--%s = %q, want %q", flag, got, want)
		}
	}
	if !w.Flags().Changed("concurrency") {
		t.Error("--concurrency from its variable does not count as given")
	}

	t.Setenv("WASMJOBS_BATCH_RUN_MAX_RETRY", "3")
	b := findCmd(t, nil, "batch", "run")
	if err := applyEnv(b); err != nil || !b.Flags().Changed("max-retry") || b.Flags().Lookup("max-retry").Value.String() != "3" {
		t.Errorf("batch run --max-retry from $WASMJOBS_BATCH_RUN_MAX_RETRY: %v, %v", b.Flags().Lookup("max-retry").Value, err)
	}

	for env, val := range map[string]string{"S3_USE_SSL": "maybe", "WASMJOBS_READ_ONLY": "yes please", "WASMJOBS_CONCURRENCY": "many"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, val)
			path := []string{"worker"}
			if env == "WASMJOBS_READ_ONLY" {
				path = []string{"web"}
			}
			err := applyEnv(findCmd(t, nil, path...))
			if err == nil || !strings.Contains(err.Error(), "$"+env) {
				t.Fatalf("%s=%q: %v, want an error naming the variable", env, val, err)
			}
		})
	}

	// Through the binary's own front door: the error, before anything runs.
	t.Setenv("S3_USE_SSL", "")
	t.Setenv("WASMJOBS_CONCURRENCY", "")
	t.Setenv("WASMJOBS_NN_ALLOW_LOAD", "perhaps")
	_, err := execute(t, "", "worker", "--redis", "redis://127.0.0.1:1/0")
	if err == nil || !strings.Contains(err.Error(), "$WASMJOBS_NN_ALLOW_LOAD") {
		t.Fatalf("worker with WASMJOBS_NN_ALLOW_LOAD=perhaps: %v", err)
	}
}
