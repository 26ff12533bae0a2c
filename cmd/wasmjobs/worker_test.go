package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestWorkerContainmentFlags: --max-result and the repeatable allow-lists
// reach the handler's configuration; the guest bucket is refused as an
// output location.
func TestWorkerContainmentFlags(t *testing.T) {
	var rf runFlags
	cmd := &cobra.Command{Use: "worker"}
	rf.registerWorker(cmd)
	if rf.maxResult != 1<<20 {
		t.Fatalf("default --max-result = %d, want 1 MiB", rf.maxResult)
	}
	if err := cmd.ParseFlags([]string{"--max-result=4096", "--input-allow=data/in/", "--input-allow=s3://media", "--output-allow=data/out/,results"}); err != nil {
		t.Fatal(err)
	}
	acc, err := rf.access("wasmjobs-guests")
	if err != nil {
		t.Fatal(err)
	}
	if rf.maxResult != 4096 || len(acc.Inputs) != 2 || len(acc.Outputs) != 2 {
		t.Fatalf("max result %d, access %+v", rf.maxResult, acc)
	}
	if acc.Inputs[0].Bucket != "data" || acc.Inputs[0].Key != "in/" || acc.Outputs[1].Bucket != "results" {
		t.Errorf("access %+v", acc)
	}
	rf.outputAllow = []string{"wasmjobs-guests/x"}
	if _, err := rf.access("wasmjobs-guests"); err == nil || !strings.Contains(err.Error(), "guest bucket") {
		t.Errorf("guest bucket as an output: %v", err)
	}
	rf.outputAllow = []string{"NO"}
	if _, err := rf.access("wasmjobs-guests"); err == nil || !strings.Contains(err.Error(), "--output-allow") {
		t.Errorf("bad entry: %v", err)
	}
}
