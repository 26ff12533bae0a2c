package e2e_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"strings"
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/guests"
	"github.com/wasmjobs/wasmjobs/internal/sandbox"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/jobs"
)

// TestOCRGuest runs the ocr guest in the sandbox alone (models, no
// services): a rendered line is read, the output is byte-for-byte
// deterministic, a blank image has no lines, and bad input fails cleanly.
func TestOCRGuest(t *testing.T) {
	rt := newRuntime(t, newNN(t))
	img := encodePNG(t, renderLines(t, []string{"Invoice 2024-06: Total 1,234.56 EUR"}, 0, 40))
	first, err := runGuest(t, rt, guests.OCR, img, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out ocrResult
	if err := json.Unmarshal(first.Stdout, &out); err != nil {
		t.Fatalf("%s: %v", first.Stdout, err)
	}
	if got := out.text(); got != "Invoice 2024-06: Total 1,234.56 EUR" {
		t.Errorf("text = %q (output %s)", got, first.Stdout)
	}
	if len(out.Lines) != 1 || out.Lines[0].Confidence < 0.9 {
		t.Errorf("want one confident line, got %s", first.Stdout)
	} else if b := out.Lines[0].Box; b[0] < 0 || b[1] < 0 || b[2] > out.Width || b[3] > out.Height || b[0] >= b[2] || b[1] >= b[3] {
		t.Errorf("box %v outside the %dx%d image", b, out.Width, out.Height)
	}
	again, err := runGuest(t, rt, guests.OCR, img, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(again.Stdout) != string(first.Stdout) {
		t.Errorf("not deterministic:\n%s\n%s", first.Stdout, again.Stdout)
	}

	blank := image.NewRGBA(image.Rect(0, 0, 300, 120))
	draw.Draw(blank, blank.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	res, err := runGuest(t, rt, guests.OCR, encodeJPEG(t, blank), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Stdout); got != `{"width":300,"height":120,"lines":[]}` {
		t.Errorf("blank image: %s", got)
	}

	for name, input := range map[string][]byte{
		"empty":     nil,
		"text":      []byte("not an image"),
		"truncated": img[:len(img)/2],
	} {
		_, err := runGuest(t, rt, guests.OCR, input, nil)
		var ge *sandbox.GuestError
		if !errors.As(err, &ge) || !errors.Is(err, sandbox.ErrExit) || ge.ExitCode != 2 || !strings.Contains(ge.Stderr, "ocr: invalid image") {
			t.Errorf("%s input: err = %v, want exit 2 with \"ocr: invalid image\"", name, err)
		}
	}
}

// TestOCRAccuracy sends 200 rendered single-line images (PNG and JPEG, four
// fonts, 30–64 px) through the whole path — S3 input, Redis queue, worker,
// ocr guest, ONNX Runtime, S3 output — and requires a character accuracy,
// 1 − Σ edit distance / Σ characters, of at least 98%.
func TestOCRAccuracy(t *testing.T) {
	const n = 200
	p := newPipeline(t, 4)
	ctx := testenv.Context(t, 10*time.Minute)
	cases := ocrCases(t, n)
	start := time.Now()
	infos := make([]*jobs.TaskInfo, n)
	for i, c := range cases {
		key, ct := fmt.Sprintf("ocr/line-%03d.png", i), "image/png"
		if !c.png {
			key, ct = fmt.Sprintf("ocr/line-%03d.jpg", i), "image/jpeg"
		}
		info, err := p.client.EnqueueImage(ctx, jobs.Payload{Guest: "ocr", Input: p.put(t, key, c.image, ct)}, jobs.Retention(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		infos[i] = info
	}
	var dist, total, exact int
	for i, c := range cases {
		var out ocrResult
		raw := p.output(t, ctx, infos[i])
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("image %d: %s: %v", i, raw, err)
		}
		got := out.text()
		d := levenshtein(c.text, got)
		dist += d
		total += len([]rune(c.text))
		if d == 0 {
			exact++
		} else {
			t.Logf("image %d: want %q, got %q", i, c.text, got)
		}
	}
	elapsed := time.Since(start)
	acc := 1 - float64(dist)/float64(total)
	t.Logf("OCR character accuracy %.2f%% (%d edits in %d characters), %d/%d lines exact; %d images in %s (%.0f ms/image, worker concurrency 4)",
		100*acc, dist, total, exact, n, n, elapsed.Round(time.Millisecond), float64(elapsed.Milliseconds())/n)
	if acc < 0.98 {
		t.Errorf("OCR character accuracy %.2f%% < 98%%", 100*acc)
	}
}

// TestOCRPage reads a rendered page of six lines through the whole path and
// requires every line, in reading order.
func TestOCRPage(t *testing.T) {
	p := newPipeline(t, 2)
	ctx := testenv.Context(t, 2*time.Minute)
	for _, c := range pageCases(t) {
		t.Run(c.name, func(t *testing.T) {
			ct := "image/jpeg"
			if c.png {
				ct = "image/png"
			}
			info, err := p.client.EnqueueImage(ctx, jobs.Payload{Guest: "ocr", Input: p.put(t, "page/"+c.name, c.image, ct)}, jobs.Retention(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			raw := p.output(t, ctx, info)
			var out ocrResult
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatalf("%s: %v", raw, err)
			}
			if len(out.Lines) != len(pageLines) {
				t.Fatalf("found %d lines, want %d: %s", len(out.Lines), len(pageLines), raw)
			}
			for i, l := range out.Lines {
				if d := levenshtein(pageLines[i], l.Text); d > len(pageLines[i])/10 {
					t.Errorf("line %d = %q, want %q", i, l.Text, pageLines[i])
				}
				if i > 0 && l.Box[1] <= out.Lines[i-1].Box[1] {
					t.Errorf("line %d box %v is not below line %d box %v", i, l.Box, i-1, out.Lines[i-1].Box)
				}
			}
		})
	}
}
