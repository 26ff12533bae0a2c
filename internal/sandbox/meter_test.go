package sandbox

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

// meterWat exercises every place a function index appears: calls past an
// import, an element segment, ref.func in code and in a declarative
// segment, exports, the start function and the name section. Run, it exits
// with 42 = 1 (set by start) + 20 (through the table) + 21 (through ref.func).
const meterWat = `(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (type $r (func (result i32)))
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  (table 3 funcref)
  (elem (i32.const 0) $twenty $twenty)
  (elem declare func $twentyone)
  (func $init (global.set $g (i32.const 1)))
  (start $init)
  (func $twenty (result i32) (i32.const 20))
  (func $twentyone (result i32) (i32.const 21))
  (func $sum (export "sum") (param $n i32) (result i32) (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $i))
  (func $main (export "_start")
    (table.set 0 (i32.const 2) (ref.func $twentyone))
    (call $exit
      (i32.add (global.get $g)
        (i32.add (call_indirect (type $r) (i32.const 1))
          (i32.add (call_indirect (type $r) (i32.const 2))
            (i32.sub (call $sum (i32.const 100000)) (i32.const 100000))))))))`

func wat(t *testing.T, src string, flags ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		if os.Getenv(testenv.EnvRequire) == "1" {
			t.Fatal("wat2wasm not found: make tools installs wabt")
		}
		t.Skip("wat2wasm not found")
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "m.wat"), filepath.Join(dir, "m.wasm")
	if err := os.WriteFile(in, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("wat2wasm", append(flags, in, "-o", out)...).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMeterKeepsMeaning(t *testing.T) {
	ctx := context.Background()
	orig := wat(t, meterWat, "--debug-names")
	metered, err := meter(orig, ModuleLimits{}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	if err := instantiateMeter(ctx, rt); err != nil {
		t.Fatal(err)
	}
	names := func(wasm []byte) map[string]string {
		cm, err := rt.CompileModule(ctx, wasm)
		if err != nil {
			t.Fatal(err)
		}
		defer cm.Close(ctx)
		got := map[string]string{}
		for name, def := range cm.ExportedFunctions() {
			got[name] = def.DebugName()
		}
		return got
	}
	before, after := names(orig), names(metered)
	for export, want := range map[string]string{"_start": ".main", "sum": ".sum"} {
		if before[export] != want || after[export] != want {
			t.Errorf("export %s is %q before metering, %q after, want %q", export, before[export], after[export], want)
		}
	}
	_, err = rt.InstantiateWithConfig(withFuel(ctx), metered, wazero.NewModuleConfig().WithName(""))
	var exit interface{ ExitCode() uint32 }
	if !asExit(err, &exit) || exit.ExitCode() != 42 {
		t.Fatalf("metered module: err = %v, want exit code 42", err)
	}
}

// TestMeterAddsMissingSections meters a module without types, imports or
// globals of its own: the sections are created in their places.
func TestMeterAddsMissingSections(t *testing.T) {
	ctx := context.Background()
	metered, err := meter(wat(t, `(module (memory (export "memory") 1) (func (export "_start") (loop $l (br_if $l (i32.const 0)))))`),
		ModuleLimits{}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	if err := instantiateMeter(ctx, rt); err != nil {
		t.Fatal(err)
	}
	mod, err := rt.InstantiateWithConfig(withFuel(ctx), metered, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mod.ExportedFunction("_start").Call(withFuel(ctx)); err != nil {
		t.Fatal(err)
	}
}

func asExit(err error, target *interface{ ExitCode() uint32 }) bool {
	return errors.As(err, target)
}
