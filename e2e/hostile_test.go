package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/hostile"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/sandbox"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/jobs"
)

// TestHostileSuite runs every hostile guest as a job on a `wasmjobs worker`
// process (concurrency 4) while good jobs run beside them, then through
// `wasmjobs run`. Each hostile job must end archived, unretried, with its
// expected reason; every good job must succeed; the worker's peak RSS stays
// under 1 GiB and its RSS returns to within 50 MB of where it was after a
// warm-up.
func TestHostileSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the wasmjobs binary")
	}
	redis := testenv.Redis(t)
	store, _ := testenv.Store(t)
	guestBucket := testenv.NewBucket(t, store)
	ctx := testenv.Context(t, 8*time.Minute)
	cli := buildCLI(t, ctx, redis, guestBucket)
	command := func(args ...string) *exec.Cmd { return cli.command(ctx, args...) }

	nnArgs := modelsArgs(t)
	guests := hostileGuests(t, nnArgs != nil)
	cli.run(t, ctx, pushBuiltin(t)...)
	pushHostile(t, ctx, store, guestBucket, guests)

	w := cli.startWorker(t, ctx, append([]string{"--concurrency", "4", "--guest-timeout", "60s", "--poll-interval", "50ms"}, nnArgs...)...)

	client, err := jobs.NewClient(redis)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	const ocrLine = "Invoice 2024-06: Total 1,234.56 EUR"
	ocrImage := encodePNG(t, renderLines(t, []string{ocrLine}, 0, 40))
	good := func(i int) error {
		name := fmt.Sprintf("good-%d", i)
		res, err := client.Run(ctx, jobs.TypeText, jobs.Payload{Guest: "hello", Data: []byte(name)})
		if err == nil && string(res) != `{"greeting":"Hello, `+name+`!"}` {
			err = fmt.Errorf("result %s", res)
		}
		if err == nil {
			_, err = client.Run(ctx, jobs.TypeText, jobs.Payload{Guest: "wordcount", Data: []byte("a b a " + name)})
		}
		if err == nil && nnArgs != nil {
			// Inference beside the hostile guests: the models are loaded
			// during the warm-up, so that "before" includes them.
			res, err = client.Run(ctx, jobs.TypeImage, jobs.Payload{Guest: "ocr", Data: ocrImage})
			if err == nil && !strings.Contains(string(res), ocrLine) {
				err = fmt.Errorf("ocr result %s", res)
			}
			if err == nil {
				res, err = client.Run(ctx, jobs.TypeText, jobs.Payload{Guest: "langid", Data: []byte("Der Zug in die Stadt fährt jeden Morgen um halb acht.")})
				if err == nil && !strings.Contains(string(res), `"lang":"de"`) {
					err = fmt.Errorf("langid result %s", res)
				}
			}
		}
		if err != nil {
			return fmt.Errorf("good job %d: %w", i, err)
		}
		return nil
	}
	for i := range 20 { // warm-up: compile the good guests, grow the pools
		if err := good(i); err != nil {
			t.Fatal(err)
		}
	}
	if nnArgs != nil {
		// The largest page a job may send (max_side 1280 is the detection
		// model's shape cap): the allocator's high-water mark for legal
		// inference is part of "before", so what is left after the suite
		// is what the hostile guests kept.
		lines := make([]string, 12)
		for i := range lines {
			lines[i] = fmt.Sprintf("Line %02d of the largest page a job may send: Total 1,234.56 EUR", i)
		}
		data := testenv.NewBucket(t, store)
		page := s3url.ObjectURL{Bucket: data, Key: "page.png"}
		if err := store.Put(ctx, page, encodePNG(t, renderLines(t, lines, 0, 40)), "image/png", nil); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			out := s3url.ObjectURL{Bucket: data, Key: fmt.Sprintf("page-%d.json", i)}
			_, err := client.Run(ctx, jobs.TypeImage, jobs.Payload{Guest: "ocr", Input: page.String(), Output: out.String(), Params: map[string]string{"max_side": "1280"}})
			if err != nil {
				t.Fatalf("large page: %v", err)
			}
			res, _, err := store.Get(ctx, out, 1<<20)
			if err != nil || !strings.Contains(string(res), "Line 11 of the largest page") {
				t.Fatalf("large page: %v %.200s", err, res)
			}
		}
	}
	pid := w.Process.Pid
	before := procStatus(t, pid, "VmRSS")

	var wg sync.WaitGroup
	goodErrs := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 20; i < 80; i++ {
			if err := good(i); err != nil {
				goodErrs <- err
				return
			}
		}
	}()

	checkHostile(t, ctx, redis, "default", guests)
	wg.Wait()
	select {
	case err := <-goodErrs:
		t.Fatal(err)
	default:
	}
	peak := procStatus(t, pid, "VmHWM")
	// Go gives freed memory back to the kernel in the background: give it
	// a while before calling what is left a leak.
	after := procStatus(t, pid, "VmRSS")
	for wait := time.Now(); after > before+50<<20 && time.Since(wait) < time.Minute; {
		time.Sleep(time.Second)
		after = procStatus(t, pid, "VmRSS")
	}
	t.Logf("worker RSS: %d MiB after warm-up, peak %d MiB, %d MiB after the suite", before>>20, peak>>20, after>>20)
	if peak >= 1<<30 {
		t.Errorf("peak RSS %d MiB, want under 1 GiB", peak>>20)
	}
	if after > before+50<<20 {
		t.Errorf("RSS after the suite %d MiB, before %d MiB: more than 50 MB kept", after>>20, before>>20)
	}

	// The same guests through `wasmjobs run`: non-zero exit, the reason as
	// the last line of stderr.
	for _, g := range guests {
		path := filepath.Join(hostile.Dir(), g.Name+".wasm")
		timeout := "60s"
		if runsOut(g) {
			timeout = "5s"
		}
		args := []string{"run", path, "--guest-timeout", timeout}
		for k, v := range g.Params {
			args = append(args, "--param", k+"="+v)
		}
		if strings.HasPrefix(g.Name, "nn-") {
			args = append(args, nnArgs...)
		}
		c := command(args...)
		c.Stdin = strings.NewReader(g.Input)
		var stderr bytes.Buffer
		c.Stderr = &stderr
		err := c.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Errorf("run %s: %v, want a non-zero exit", g.Name, err)
			continue
		}
		// The guest's own stderr is passed through; the last line is the
		// reason, on one line. The expected text is in one or the other, as
		// an archived job's reason holds both.
		out := strings.TrimRight(stderr.String(), "\n")
		lines := strings.Split(out, "\n")
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, "wasmjobs: ") || !strings.Contains(out, g.Expect) {
			t.Errorf("run %s: stderr %q: want %q in it and a last line \"wasmjobs: <reason>\"", g.Name, tail(out, 500), g.Expect)
		}
	}
}

// hostileGuests loads the hostile guests, without the inference ones when
// there are no models.
func hostileGuests(t *testing.T, withModels bool) []hostile.Guest {
	var guests []hostile.Guest
	for _, g := range hostile.Load(t) {
		if strings.HasPrefix(g.Name, "nn-") && !withModels {
			t.Logf("skipping %s: no models/models.json", g.Name)
			continue
		}
		guests = append(guests, g)
	}
	return guests
}

// pushHostile puts the hostile modules straight into the registry's bucket
// as h-<name>, as if pushed by something other than `guest push`: the
// worker must refuse them itself.
func pushHostile(t *testing.T, ctx context.Context, store *blob.Store, guestBucket string, guests []hostile.Guest) {
	t.Helper()
	for _, g := range guests {
		digest := sandbox.Digest(g.Wasm)
		md := map[string]string{"wasmjobs-sha256": digest}
		for _, key := range []string{"h-" + g.Name + ".wasm", "sha256/" + strings.TrimPrefix(digest, "sha256:") + ".wasm"} {
			if err := store.Put(ctx, s3url.ObjectURL{Bucket: guestBucket, Key: key}, g.Wasm, "application/wasm", md); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// runsOut reports whether a hostile guest is meant to run out of time: it
// gets a short job timeout (its guest deadline is then the job's less the
// reserve for the result); the others have room to finish on a loaded
// machine.
func runsOut(g hostile.Guest) bool { return strings.Contains(g.Expect, "deadline") }

// checkHostile enqueues every hostile guest as a text job on queue q
// (three retries allowed) and checks that each ends archived, unretried, with its expected
// reason.
func checkHostile(t *testing.T, ctx context.Context, redis asynq.RedisConnOpt, q string, guests []hostile.Guest) {
	t.Helper()
	raw := asynq.NewClient(redis)
	defer raw.Close()
	insp := asynq.NewInspector(redis)
	defer insp.Close()
	ids := map[string]string{}
	queue := ""
	for _, g := range guests {
		tk, _, err := jobs.NewTask(jobs.TypeText, jobs.Payload{Guest: "h-" + g.Name, Data: []byte(g.Input), Params: g.Params})
		if err != nil {
			t.Fatal(err)
		}
		timeout := 90 * time.Second
		if runsOut(g) {
			timeout = 7 * time.Second
		}
		info, err := raw.EnqueueContext(ctx, tk, asynq.MaxRetry(3), asynq.Timeout(timeout), asynq.Queue(q))
		if err != nil {
			t.Fatal(err)
		}
		ids[g.Name], queue = info.ID, info.Queue
	}
	for _, g := range guests {
		ti := waitFinal(t, ctx, insp, queue, ids[g.Name])
		switch {
		case ti.State != asynq.TaskStateArchived:
			t.Errorf("%s: task %s, want archived", g.Name, ti.State)
		case ti.Retried != 0:
			t.Errorf("%s: retried %d times (%s), want 0", g.Name, ti.Retried, ti.LastErr)
		case !strings.Contains(ti.LastErr, g.Expect):
			t.Errorf("%s: reason %q does not contain %q", g.Name, ti.LastErr, g.Expect)
		}
	}
}

// waitFinal waits until a task is archived, completed or scheduled for retry.
func waitFinal(t *testing.T, ctx context.Context, insp *asynq.Inspector, queue, id string) *asynq.TaskInfo {
	t.Helper()
	for {
		ti, err := insp.GetTaskInfo(queue, id)
		if err != nil {
			t.Fatal(err)
		}
		switch ti.State {
		case asynq.TaskStateArchived, asynq.TaskStateCompleted, asynq.TaskStateRetry:
			return ti
		}
		select {
		case <-ctx.Done():
			t.Fatalf("task %s still %s: %v", id, ti.State, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
