package e2e_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/wasmjobs/wasmjobs/internal/guests"
	"github.com/wasmjobs/wasmjobs/internal/nn"
	"github.com/wasmjobs/wasmjobs/internal/sandbox"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

// This file ports the ocr guest (guest/ocr/src: main.rs, det.rs, raster.rs,
// ctc.rs) to Go, step for step, so that the Wasm guest can be measured
// against a native program doing the same work with the same models.
//
// The guest computes in f32 and f64 exactly as written, without fused
// multiply-adds (Wasm has none). Go may fuse x*y + z into one FMA on some
// architectures, so where a product feeds a sum the port rounds it
// explicitly with a conversion (float32(x*y) + z), which the Go spec says
// prevents fusion.

// The guest's constants (main.rs).
const (
	ocrMaxPixels = 16 << 20
	detMargin    = 16
	recHeight    = 48
	clsWidth     = 192
)

var (
	imagenetMean = [3]float32{0.485, 0.456, 0.406}
	imagenetStd  = [3]float32{0.229, 0.224, 0.225}
	// halfNorm is (v - 0.5) / 0.5, the classifier's and recognizer's normalisation.
	halfNorm = [3]float32{0.5, 0.5, 0.5}
)

// ocrParams are the guest's params; defaultOCRParams are what it uses when
// a job gives none.
type ocrParams struct {
	maxSide       int
	boxThresh     float32
	unclipRatio   float32
	pad           float32
	minConfidence float32
	cls           bool
	recMinWidth   int
	recMaxWidth   int
}

var defaultOCRParams = ocrParams{
	maxSide:       960,
	boxThresh:     0.6,
	unclipRatio:   1.5,
	pad:           0.25,
	minConfidence: 0.5,
	cls:           true,
	recMinWidth:   320,
	recMaxWidth:   1600,
}

// nativeOCR is the ocr guest's pipeline in Go. Its graphs are shared: ocr
// is safe for concurrent use, each call with its own execution contexts.
type nativeOCR struct {
	det, cls, rec nn.Graph
	// charset maps a recognizer class to its text: the CTC blank, the
	// dictionary's lines, then a space.
	charset []string
	params  ocrParams
}

// newNativeOCR loads the three models on an ONNX Runtime backend of its own,
// configured as a worker's is by default on CPU (no batching, one intra-op
// thread per run), and parses the dictionary once.
func newNativeOCR(tb testing.TB) *nativeOCR {
	tb.Helper()
	dir := testenv.ModelsDir(tb)
	backend := newONNX(tb, 0, 1)
	o := &nativeOCR{params: defaultOCRParams}
	for name, g := range map[string]*nn.Graph{"ocr-det": &o.det, "ocr-cls": &o.cls, "ocr-rec": &o.rec} {
		graph, err := backend.LoadFile(context.Background(), filepath.Join(dir, modelFiles[name]))
		if err != nil {
			tb.Fatalf("model %s: %v", name, err)
		}
		tb.Cleanup(func() { graph.Close() })
		*g = graph
	}
	keys, err := os.ReadFile(filepath.Join(dir, modelFiles["ocr-keys"]))
	if err != nil {
		tb.Fatal(err)
	}
	if o.charset, err = parseCharset(keys); err != nil {
		tb.Fatal(err)
	}
	return o
}

// parseCharset parses ppocr_keys_v1.txt as ctc.rs does: one character per
// line, "\n" or "\r\n" line ends, an optional final newline; class 0 is the
// CTC blank and the last class a space.
func parseCharset(keys []byte) ([]string, error) {
	if !utf8.Valid(keys) {
		return nil, errors.New("ocr-keys: the dictionary is not UTF-8")
	}
	lines := strings.Split(string(keys), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	chars := make([]string, 0, len(lines)+2)
	chars = append(chars, "")
	for _, l := range lines {
		chars = append(chars, strings.TrimSuffix(l, "\r"))
	}
	return append(chars, " "), nil
}

// ocrLine is one recognized line.
type ocrLine struct {
	text       string
	confidence float32
	box        boxF
}

// ocr reads a PNG or JPEG and returns the bytes the guest would print.
func (o *nativeOCR) ocr(ctx context.Context, data []byte) ([]byte, error) {
	img, err := decodeRGB(data)
	if err != nil {
		return nil, fmt.Errorf("ocr: invalid image (%d bytes): %w", len(data), err)
	}
	boxes, err := o.detect(ctx, img)
	if err != nil {
		return nil, err
	}
	var lines []ocrLine
	for _, b := range boxes {
		crop := img.crop(int(b.x0), int(b.y0), int(b.x1), int(b.y1))
		if crop.w == 0 || crop.h == 0 {
			continue
		}
		// A crop 1.5× taller than wide is vertical text.
		if float32(crop.h) >= 1.5*float32(crop.w) {
			crop = crop.rotate90ccw()
		}
		best, err := o.recognize(ctx, crop)
		if err != nil {
			return nil, err
		}
		if o.params.cls {
			// The guest keeps a turn the classifier suggests only if
			// recognition is more confident that way round.
			up, err := o.upsideDown(ctx, crop)
			if err != nil {
				return nil, err
			}
			if up {
				turned, err := o.recognize(ctx, crop.rotate180())
				if err != nil {
					return nil, err
				}
				if turned.confidence > best.confidence {
					best = turned
				}
			}
		}
		// Rust's str::trim and strings.TrimSpace both trim Unicode White_Space.
		best.text = strings.TrimSpace(best.text)
		if best.text == "" || best.confidence < o.params.minConfidence {
			continue
		}
		best.box = b
		lines = append(lines, best)
	}
	return renderOCR(img.w, img.h, lines), nil
}

// detect returns the text boxes in original image pixels, in reading order
// (main.rs detect).
func (o *nativeOCR) detect(ctx context.Context, img *rgb) ([]boxF, error) {
	p := o.params
	dw, dh := img.w, img.h
	if longer := max(img.w, img.h); longer > p.maxSide {
		// Rust's f64::round rounds half away from zero, as math.Round does.
		s := float64(p.maxSide) / float64(longer)
		dw = max(int(math.Round(float64(img.w)*s)), 1)
		dh = max(int(math.Round(float64(img.h)*s)), 1)
	}
	scaled := img
	if dw != img.w || dh != img.h {
		scaled = img.resize(dw, dh)
	}
	// A white margin, then white padding to multiples of 32: never stretched.
	pw, ph := roundUp(dw+2*detMargin, 32), roundUp(dh+2*detMargin, 32)
	canvas := scaled.pad(detMargin, detMargin, pw, ph, 255)
	input := make([]float32, 3*pw*ph)
	canvas.chwBGR(input, pw, ph, imagenetMean, imagenetStd)
	prob, err := runModel(ctx, o.det, "ocr-det", []uint32{1, 3, uint32(ph), uint32(pw)}, input, pw*ph)
	if err != nil {
		return nil, err
	}
	if len(prob) != pw*ph {
		return nil, fmt.Errorf("model \"ocr-det\": output has %d values, want %d (%dx%d)", len(prob), pw*ph, pw, ph)
	}
	db := dbParams{thresh: 0.3, boxThresh: p.boxThresh, unclipRatio: p.unclipRatio, minSize: 3, maxCandidates: 1000}
	var found []boxF
	for _, r := range dbRegions(prob, pw, ph, db) {
		found = append(found, r.box)
	}
	sx, sy := float32(img.w)/float32(dw), float32(img.h)/float32(dh)
	iw, ih := float32(img.w), float32(img.h)
	const m = float32(detMargin)
	var boxes []boxF
	for _, b := range mergeLines(found) {
		b = boxF{x0: (b.x0 - m) * sx, y0: (b.y0 - m) * sy, x1: (b.x1 - m) * sx, y1: (b.y1 - m) * sy}
		// Grown by pad × its height on every side: tight crops lose spaces.
		g := float32(p.pad * b.height())
		b = boxF{
			x0: max(floor32(b.x0-g), 0),
			y0: max(floor32(b.y0-g), 0),
			x1: min(ceil32(b.x1+g), iw),
			y1: min(ceil32(b.y1+g), ih),
		}
		if b.width() >= 1 && b.height() >= 1 {
			boxes = append(boxes, b)
		}
	}
	ordered := make([]boxF, 0, len(boxes))
	for _, i := range readingOrder(boxes) {
		ordered = append(ordered, boxes[i])
	}
	return ordered, nil
}

// scaledWidth is the width of c resized to height with its aspect ratio kept.
func scaledWidth(c *rgb, height int) int {
	return max(int(math.Ceil(float64(height)*float64(c.w)/float64(c.h))), 1)
}

// upsideDown reports whether the direction classifier says crop is turned
// 180°: class 1 more likely than class 0 and above 0.9.
func (o *nativeOCR) upsideDown(ctx context.Context, crop *rgb) (bool, error) {
	resized := crop.resize(min(scaledWidth(crop, recHeight), clsWidth), recHeight)
	input := make([]float32, 3*recHeight*clsWidth)
	resized.chwBGR(input, clsWidth, recHeight, halfNorm, halfNorm)
	out, err := runModel(ctx, o.cls, "ocr-cls", []uint32{1, 3, recHeight, clsWidth}, input, 2)
	if err != nil {
		return false, err
	}
	if len(out) != 2 {
		return false, fmt.Errorf("model \"ocr-cls\": output has %d values, want 2", len(out))
	}
	return out[1] > out[0] && out[1] > 0.9, nil
}

// recognize reads one crop: height 48 with the aspect ratio kept (at most
// rec_max_width wide), right-padded with zeros to a multiple of 8 and at
// least rec_min_width, then greedy CTC.
func (o *nativeOCR) recognize(ctx context.Context, crop *rgb) (ocrLine, error) {
	w := min(scaledWidth(crop, recHeight), o.params.recMaxWidth)
	tw := max(roundUp(w, 8), roundUp(o.params.recMinWidth, 8))
	resized := crop.resize(w, recHeight)
	input := make([]float32, 3*recHeight*tw)
	resized.chwBGR(input, tw, recHeight, halfNorm, halfNorm)
	classes := len(o.charset)
	// The guest reads at most tw/4+1 timesteps (PP-OCRv4 gives tw/8).
	out, err := runModel(ctx, o.rec, "ocr-rec", []uint32{1, 3, recHeight, uint32(tw)}, input, (tw/4+1)*classes)
	if err != nil {
		return ocrLine{}, err
	}
	if len(out) == 0 || len(out)%classes != 0 {
		return ocrLine{}, fmt.Errorf("model \"ocr-rec\": output has %d values, not a multiple of the %d classes of ocr-keys", len(out), classes)
	}
	text, conf := ctcDecode(out, len(out)/classes, classes, o.charset)
	return ocrLine{text: text, confidence: conf}, nil
}

// runModel runs g once on an f32 input and returns output 0, which must
// hold at most maxOut values (the guest's output buffer).
func runModel(ctx context.Context, g nn.Graph, name string, dims []uint32, input []float32, maxOut int) ([]float32, error) {
	ec, err := g.NewContext()
	if err != nil {
		return nil, fmt.Errorf("model %q: %w", name, err)
	}
	defer ec.Close()
	data, err := binary.Append(nil, binary.LittleEndian, input)
	if err != nil {
		return nil, err
	}
	if err := ec.SetInput(0, nn.Tensor{Type: nn.F32, Dims: dims, Data: data}); err != nil {
		return nil, fmt.Errorf("model %q: set_input: %w", name, err)
	}
	if err := ec.Compute(ctx); err != nil {
		return nil, fmt.Errorf("model %q: compute: %w", name, err)
	}
	t, err := ec.Output(0)
	if err != nil {
		return nil, fmt.Errorf("model %q: get_output: %w", name, err)
	}
	if t.Type != nn.F32 || len(t.Data)%4 != 0 || len(t.Data)/4 > maxOut {
		return nil, fmt.Errorf("model %q: get_output: want at most %d f32 values, got %s with %d bytes", name, maxOut, t.Type, len(t.Data))
	}
	out := make([]float32, len(t.Data)/4)
	_, err = binary.Decode(t.Data, binary.LittleEndian, out)
	return out, err
}

// ctcDecode is greedy CTC decoding of steps × classes probabilities: argmax
// per step (the first maximum), repeats collapsed, blanks dropped, classes
// the charset lacks dropped. The confidence is the mean probability of the
// kept steps, summed in f32 as the guest does; 0 when none is kept.
func ctcDecode(probs []float32, steps, classes int, charset []string) (string, float32) {
	var text strings.Builder
	var sum float32
	kept, prev := 0, -1
	for step := range steps {
		best, bestP := 0, float32(math.Inf(-1))
		for i, p := range probs[step*classes : (step+1)*classes] {
			if p > bestP {
				best, bestP = i, p
			}
		}
		if best != 0 && best != prev && best < len(charset) {
			text.WriteString(charset[best])
			sum += bestP
			kept++
		}
		prev = best
	}
	if kept == 0 {
		return text.String(), 0
	}
	return text.String(), sum / float32(kept)
}

// renderOCR writes the guest's output: keys in its order, confidences with
// 4 decimals (both Rust's {:.4} and strconv round the exact value, ties to
// even), box edges as integers, no trailing newline.
func renderOCR(width, height int, lines []ocrLine) []byte {
	out := fmt.Appendf(nil, `{"width":%d,"height":%d,"lines":[`, width, height)
	for i, l := range lines {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"text":`...)
		out = appendJSONString(out, l.text)
		out = append(out, `,"confidence":`...)
		out = strconv.AppendFloat(out, float64(l.confidence), 'f', 4, 32)
		out = fmt.Appendf(out, `,"box":[%d,%d,%d,%d]}`, uint32(l.box.x0), uint32(l.box.y0), uint32(l.box.x1), uint32(l.box.y1))
	}
	return append(out, "]}"...)
}

// appendJSONString quotes s as serde_json does: it escapes only '"', '\\'
// and control characters (\b \t \n \f \r, else \u00xx) and copies the rest,
// where encoding/json would also escape <, >, & and U+2028/U+2029.
func appendJSONString(out []byte, s string) []byte {
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			out = append(out, '\\', c)
		case '\b':
			out = append(out, `\b`...)
		case '\t':
			out = append(out, `\t`...)
		case '\n':
			out = append(out, `\n`...)
		case '\f':
			out = append(out, `\f`...)
		case '\r':
			out = append(out, `\r`...)
		default:
			if c < 0x20 {
				out = fmt.Appendf(out, `\u%04x`, c)
			} else {
				out = append(out, c)
			}
		}
	}
	return append(out, '"')
}

func roundUp(v, m int) int { return (v + m - 1) / m * m }

func floor32(x float32) float32 { return float32(math.Floor(float64(x))) }
func ceil32(x float32) float32  { return float32(math.Ceil(float64(x))) }
func abs32(x float32) float32   { return float32(math.Abs(float64(x))) }

// Decoding (main.rs decode).

var (
	pngMagic  = []byte("\x89PNG\r\n\x1a\n")
	jpegMagic = []byte{0xff, 0xd8, 0xff}
)

// decodeRGB decodes a PNG or JPEG (told by its magic bytes, as the image
// crate guesses formats) of at most 16 megapixels into RGB, compositing
// transparency over white.
//
// # Notes
//
// PNGs decode to the same pixels as in the guest. JPEGs may not: the guest's
// decoder (jpeg-decoder 0.2) has stb_image's integer IDCT, upsamples chroma
// by interpolation and converts colour in 20-bit fixed point, while
// image/jpeg has another IDCT, replicates chroma samples and converts in
// 16-bit fixed point, so a few pixels can differ by a level or two.
func decodeRGB(data []byte) (*rgb, error) {
	var (
		decodeConfig func(io.Reader) (image.Config, error)
		decode       func(io.Reader) (image.Image, error)
	)
	switch {
	case bytes.HasPrefix(data, pngMagic):
		decodeConfig, decode = png.DecodeConfig, png.Decode
	case bytes.HasPrefix(data, jpegMagic):
		decodeConfig, decode = jpeg.DecodeConfig, jpeg.Decode
	default:
		return nil, errors.New("not a PNG or JPEG image")
	}
	cfg, err := decodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if cfg.Width == 0 || cfg.Height == 0 {
		return nil, errors.New("the image is empty")
	}
	if uint64(cfg.Width)*uint64(cfg.Height) > ocrMaxPixels {
		return nil, fmt.Errorf("%dx%d is more than %d pixels", cfg.Width, cfg.Height, ocrMaxPixels)
	}
	img, err := decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return toRGB(img), nil
}

// toRGB converts a decoded image to RGB8, compositing alpha over white.
func toRGB(img image.Image) *rgb {
	b := img.Bounds()
	out := newRGB(b.Dx(), b.Dy(), 0)
	switch m := img.(type) {
	case *image.YCbCr: // JPEG, colour
		for y := range out.h {
			for x := range out.w {
				yi, ci := m.YOffset(b.Min.X+x, b.Min.Y+y), m.COffset(b.Min.X+x, b.Min.Y+y)
				i := (y*out.w + x) * 3
				out.pix[i], out.pix[i+1], out.pix[i+2] = color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
			}
		}
	case *image.Gray: // JPEG or PNG, grey
		for y := range out.h {
			for x := range out.w {
				v := m.Pix[m.PixOffset(b.Min.X+x, b.Min.Y+y)]
				i := (y*out.w + x) * 3
				out.pix[i], out.pix[i+1], out.pix[i+2] = v, v, v
			}
		}
	case *image.NRGBA: // PNG with alpha
		for y := range out.h {
			for x := range out.w {
				p := m.Pix[m.PixOffset(b.Min.X+x, b.Min.Y+y):]
				overWhite(out.pix[(y*out.w+x)*3:], color.NRGBA{p[0], p[1], p[2], p[3]})
			}
		}
	default: // palettes, 16-bit and the rest
		if m, ok := img.(*image.RGBA); ok && m.Opaque() { // PNG without alpha
			for y := range out.h {
				row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
				for x := range out.w {
					copy(out.pix[(y*out.w+x)*3:][:3], row[4*x:])
				}
			}
			break
		}
		for y := range out.h {
			for x := range out.w {
				overWhite(out.pix[(y*out.w+x)*3:], color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA))
			}
		}
	}
	return out
}

// overWhite writes c composited over white into dst[:3] as the guest does,
// (v·a + 255·(255−a) + 127) / 255 on non-premultiplied values: an opaque
// pixel keeps its value.
func overWhite(dst []uint8, c color.NRGBA) {
	a := uint32(c.A)
	for k, v := range [3]uint8{c.R, c.G, c.B} {
		dst[k] = uint8((uint32(v)*a + 255*(255-a) + 127) / 255)
	}
}

// Raster operations (raster.rs).

// rgb is an RGB image, 3 bytes per pixel, row-major.
type rgb struct {
	w, h int
	pix  []uint8
}

func newRGB(w, h int, fill uint8) *rgb {
	m := &rgb{w: w, h: h, pix: make([]uint8, 3*w*h)}
	if fill != 0 {
		for i := range m.pix {
			m.pix[i] = fill
		}
	}
	return m
}

// resize is bilinear with pixel-center alignment, OpenCV's INTER_LINEAR
// sampling that PaddleOCR uses, computed in f32 as raster.rs does and
// rounded half up.
func (m *rgb) resize(w, h int) *rgb {
	out := newRGB(w, h, 0)
	if m.w == 0 || m.h == 0 || w == 0 || h == 0 {
		return out
	}
	xs, ys := resizeAxis(m.w, w), resizeAxis(m.h, h)
	for dy, sy := range ys {
		top, bot := m.pix[sy.i0*m.w*3:], m.pix[sy.i1*m.w*3:]
		for dx, sx := range xs {
			o := (dy*w + dx) * 3
			for k := range 3 {
				a, b := float32(top[sx.i0*3+k]), float32(top[sx.i1*3+k])
				c, d := float32(bot[sx.i0*3+k]), float32(bot[sx.i1*3+k])
				t := a + float32((b-a)*sx.frac)
				u := c + float32((d-c)*sx.frac)
				v := t + float32((u-t)*sy.frac)
				out.pix[o+k] = uint8(min(max(floor32(v+0.5), 0), 255))
			}
		}
	}
	return out
}

// axisSample is where one output index of a resized axis samples its source.
type axisSample struct {
	i0, i1 int
	frac   float32
}

func resizeAxis(src, dst int) []axisSample {
	scale := float64(src) / float64(dst)
	samples := make([]axisSample, dst)
	for d := range samples {
		s := max(float64((float64(d)+0.5)*scale)-0.5, 0)
		i0 := min(int(math.Floor(s)), src-1)
		samples[d] = axisSample{i0: i0, i1: min(i0+1, src-1), frac: float32(min(max(s-float64(i0), 0), 1))}
	}
	return samples
}

// crop returns the pixels in [x0, x1) × [y0, y1), clamped to the image.
func (m *rgb) crop(x0, y0, x1, y1 int) *rgb {
	x1, y1 = min(x1, m.w), min(y1, m.h)
	x0, y0 = min(x0, x1), min(y0, y1)
	out := newRGB(x1-x0, y1-y0, 0)
	for y := y0; y < y1; y++ {
		copy(out.pix[(y-y0)*out.w*3:][:out.w*3], m.pix[(y*m.w+x0)*3:])
	}
	return out
}

// pad places m at (left, top) on a w×h canvas of fill.
func (m *rgb) pad(left, top, w, h int, fill uint8) *rgb {
	out := newRGB(w, h, fill)
	cw := min(m.w, max(w-left, 0))
	for y := range min(m.h, max(h-top, 0)) {
		copy(out.pix[((y+top)*w+left)*3:][:cw*3], m.pix[y*m.w*3:])
	}
	return out
}

func (m *rgb) rotate180() *rgb {
	out := newRGB(m.w, m.h, 0)
	n := m.w * m.h
	for i := range n {
		copy(out.pix[(n-1-i)*3:][:3], m.pix[i*3:])
	}
	return out
}

// rotate90ccw turns m 90° counter-clockwise (numpy's rot90), for vertical text.
func (m *rgb) rotate90ccw() *rgb {
	out := newRGB(m.h, m.w, 0)
	for y := range m.h {
		for x := range m.w {
			// (x, y) goes to (y, w-1-x) in an h-wide image.
			copy(out.pix[((m.w-1-x)*m.h+y)*3:][:3], m.pix[(y*m.w+x)*3:])
		}
	}
	return out
}

// chwBGR writes m into dst as planar BGR, (v/255 − mean[c]) / std[c], in a
// tensor dstW wide and dstH high; what m does not cover keeps dst's values
// (the caller's padding).
func (m *rgb) chwBGR(dst []float32, dstW, dstH int, mean, std [3]float32) {
	plane := dstW * dstH
	for y := range min(m.h, dstH) {
		for x := range min(m.w, dstW) {
			p := m.pix[(y*m.w+x)*3:]
			for c := range 3 {
				v := float32(p[2-c]) / 255
				dst[c*plane+y*dstW+x] = (v - mean[c]) / std[c]
			}
		}
	}
}

// DB post-processing and reading order (det.rs).

// boxF is an axis-aligned box covering [x0, x1) × [y0, y1).
type boxF struct{ x0, y0, x1, y1 float32 }

func (b boxF) width() float32  { return b.x1 - b.x0 }
func (b boxF) height() float32 { return b.y1 - b.y0 }
func (b boxF) cy() float32     { return (b.y0 + b.y1) / 2 }

type dbParams struct {
	thresh, boxThresh, unclipRatio, minSize float32
	maxCandidates                           int
}

// dbRegion is a text region in probability-map coordinates.
type dbRegion struct {
	box   boxF
	score float32 // mean probability of its pixels
}

// dbRegions finds text regions in a w×h probability map: pixels above
// thresh, 4-connected components by an iterative flood fill (neighbours
// pushed left, right, up, down, so the f64 score sum adds in the guest's
// order), the bounding box between pixel centers, score and size filters,
// then PaddleOCR's unclip. Regions come in raster order of their first
// pixel; past maxCandidates the largest are kept.
func dbRegions(prob []float32, w, h int, p dbParams) []dbRegion {
	n := w * h
	// 0 = background, 1 = text not yet labelled, 2 = labelled.
	state := make([]uint8, n)
	for i, v := range prob[:n] {
		if v > p.thresh {
			state[i] = 1
		}
	}
	type candidate struct {
		pixels int
		region dbRegion
	}
	var found []candidate
	var stack []int
	for start := range n {
		if state[start] != 1 {
			continue
		}
		state[start] = 2
		stack = append(stack, start)
		minx, miny, maxx, maxy := w, h, 0, 0
		var sum float64
		count := 0
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			x, y := i%w, i/w
			minx, maxx, miny, maxy = min(minx, x), max(maxx, x), min(miny, y), max(maxy, y)
			sum += float64(prob[i])
			count++
			push := func(j int) {
				if state[j] == 1 {
					state[j] = 2
					stack = append(stack, j)
				}
			}
			if x > 0 {
				push(i - 1)
			}
			if x+1 < w {
				push(i + 1)
			}
			if y > 0 {
				push(i - w)
			}
			if y+1 < h {
				push(i + w)
			}
		}
		bw, bh := float32(maxx-minx), float32(maxy-miny)
		if min(bw, bh) < p.minSize {
			continue
		}
		score := float32(sum / float64(count))
		if score < p.boxThresh {
			continue
		}
		// Centers ± d, then to pixel edges.
		d := unclipDistance(bw, bh, p.unclipRatio)
		box := boxF{x0: float32(minx) - d, y0: float32(miny) - d, x1: float32(maxx) + 1 + d, y1: float32(maxy) + 1 + d}
		if min(box.width(), box.height()) < p.minSize+2 {
			continue
		}
		found = append(found, candidate{count, dbRegion{box, score}})
	}
	if len(found) > p.maxCandidates {
		// The largest, ties in raster order, then back in raster order.
		idx := make([]int, len(found))
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(a, b int) int { return cmp.Or(cmp.Compare(found[b].pixels, found[a].pixels), cmp.Compare(a, b)) })
		idx = idx[:p.maxCandidates]
		slices.Sort(idx)
		kept := make([]candidate, len(idx))
		for k, i := range idx {
			kept[k] = found[i]
		}
		found = kept
	}
	regions := make([]dbRegion, len(found))
	for i, c := range found {
		regions[i] = c.region
	}
	return regions
}

// unclipDistance is PaddleOCR's unclip offset for a w×h rectangle: area ×
// ratio / perimeter.
func unclipDistance(w, h, ratio float32) float32 {
	perimeter := 2 * (w + h)
	if perimeter <= 0 {
		return 0
	}
	return w * h * ratio / perimeter
}

// mergeLines merges boxes of one line (vertical centers closer than half
// the smaller height) that overlap or touch horizontally, until none do;
// each merged box stays where its first member was.
func mergeLines(boxes []boxF) []boxF {
	for {
		merged := false
		for i := 0; i < len(boxes); i++ {
			for j := i + 1; j < len(boxes); {
				a, b := boxes[i], boxes[j]
				sameLine := abs32(a.cy()-b.cy()) < min(a.height(), b.height())/2
				gap := max(a.x0, b.x0) - min(a.x1, b.x1)
				if sameLine && gap <= 0 {
					boxes[i] = boxF{x0: min(a.x0, b.x0), y0: min(a.y0, b.y0), x1: max(a.x1, b.x1), y1: max(a.y1, b.y1)}
					boxes = slices.Delete(boxes, j, j+1)
					merged = true
				} else {
					j++
				}
			}
		}
		if !merged {
			return boxes
		}
	}
}

// readingOrder returns indices of boxes in reading order: by vertical
// center (then left edge, then index); a box whose center is within half
// the line's height (its first box's) of the line's center joins the line;
// each line is sorted left to right.
func readingOrder(boxes []boxF) []int {
	byY := make([]int, len(boxes))
	for i := range byY {
		byY[i] = i
	}
	slices.SortFunc(byY, func(a, b int) int {
		return cmp.Or(cmp.Compare(boxes[a].cy(), boxes[b].cy()), cmp.Compare(boxes[a].x0, boxes[b].x0), cmp.Compare(a, b))
	})
	order := make([]int, 0, len(boxes))
	var line []int
	var lineCY, lineH float32
	flush := func() {
		slices.SortFunc(line, func(a, b int) int { return cmp.Or(cmp.Compare(boxes[a].x0, boxes[b].x0), cmp.Compare(a, b)) })
		order = append(order, line...)
		line = line[:0]
	}
	for _, i := range byY {
		b := boxes[i]
		if len(line) > 0 && abs32(b.cy()-lineCY) >= lineH/2 {
			flush()
		}
		if len(line) == 0 {
			lineCY, lineH = b.cy(), b.height()
		}
		line = append(line, i)
	}
	flush()
	return order
}

// parallel calls f(0) … f(n-1) on up to workers goroutines and returns the
// first error.
func parallel(workers, n int, f func(i int) error) error {
	var g errgroup.Group
	g.SetLimit(workers)
	for i := range n {
		g.Go(func() error { return f(i) })
	}
	return g.Wait()
}

// turnCW returns img turned clockwise by quarters × 90°.
func turnCW(img *image.RGBA, quarters int) *image.RGBA {
	for range quarters {
		b := img.Bounds()
		out := image.NewRGBA(image.Rect(0, 0, b.Dy(), b.Dx()))
		for y := range b.Dy() {
			for x := range b.Dx() {
				// (x, y) goes to (h-1-y, x) in an h-wide image.
				out.SetRGBA(b.Dy()-1-y, x, img.RGBAAt(b.Min.X+x, b.Min.Y+y))
			}
		}
		img = out
	}
	return img
}

// TestNativeMatchesGuest runs the rendered test set (the 200 lines of
// TestOCRAccuracy and the two pages of TestOCRPage, half PNG, half JPEG),
// and a line turned 180° and 90° (the guest's upside-down check and
// vertical crops), through the ocr guest in the sandbox and through
// nativeOCR:
//
//   - PNG: the outputs are the same bytes.
//   - JPEG: the two programs decode JPEG differently (see decodeRGB), so the
//     guest is also given each JPEG's pixels as image/jpeg decodes them, as a
//     PNG, and that output must be native's, byte for byte: everything after
//     decoding is the same computation. On the JPEG itself the texts must be
//     equal; how many outputs are the same bytes, how many boxes moved and
//     how far confidences drifted is logged.
func TestNativeMatchesGuest(t *testing.T) {
	images := ocrCases(t, 200)
	for _, p := range pageCases(t) {
		images = append(images, p.ocrCase)
	}
	line := renderLines(t, []string{"Invoice 2024-06: Total 1,234.56 EUR"}, 0, 40)
	for _, quarters := range []int{2, 1} {
		images = append(images, ocrCase{image: encodePNG(t, turnCW(line, quarters)), png: true})
	}
	asDecoded := make([][]byte, len(images)) // JPEGs as image/jpeg sees them
	for i, c := range images {
		if !c.png {
			img, err := jpeg.Decode(bytes.NewReader(c.image))
			if err != nil {
				t.Fatal(err)
			}
			asDecoded[i] = encodePNG(t, img)
		}
	}
	rt := newRuntime(t, newNN(t))
	guest, err := rt.Compile(context.Background(), guests.OCR, "")
	if err != nil {
		t.Fatal(err)
	}
	native := newNativeOCR(t)
	ctx := testenv.Context(t, 10*time.Minute)
	guestOutput := func(input []byte) ([]byte, error) {
		res, err := rt.Run(ctx, guest, sandbox.RunOptions{Stdin: input, Timeout: time.Minute})
		if err != nil {
			return nil, err
		}
		return res.Stdout, nil
	}
	type outputs struct{ native, guest, guestDecoded []byte }
	outs := make([]outputs, len(images))
	err = parallel(2, len(images), func(i int) error {
		o := &outs[i]
		var err error
		if o.native, err = native.ocr(ctx, images[i].image); err != nil {
			return fmt.Errorf("image %d: native: %w", i, err)
		}
		if o.guest, err = guestOutput(images[i].image); err != nil {
			return fmt.Errorf("image %d: guest: %w", i, err)
		}
		if asDecoded[i] != nil {
			if o.guestDecoded, err = guestOutput(asDecoded[i]); err != nil {
				return fmt.Errorf("image %d: guest on the decoded JPEG: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	var jpegs, jpegSame, movedBoxes int
	var confDrift float64
	for i, c := range images {
		o := outs[i]
		if c.png {
			if !bytes.Equal(o.guest, o.native) {
				t.Errorf("image %d (PNG):\nguest  %s\nnative %s", i, o.guest, o.native)
			}
			continue
		}
		jpegs++
		if !bytes.Equal(o.guestDecoded, o.native) {
			t.Errorf("image %d (JPEG), the guest given image/jpeg's pixels:\nguest  %s\nnative %s", i, o.guestDecoded, o.native)
		}
		if bytes.Equal(o.guest, o.native) {
			jpegSame++
			continue
		}
		var g, n ocrResult
		if err := json.Unmarshal(o.guest, &g); err != nil {
			t.Fatalf("image %d: guest output %s: %v", i, o.guest, err)
		}
		if err := json.Unmarshal(o.native, &n); err != nil {
			t.Fatalf("image %d: native output %s: %v", i, o.native, err)
		}
		if g.text() != n.text() || len(g.Lines) != len(n.Lines) {
			t.Errorf("image %d (JPEG): guest read %q, native %q", i, g.text(), n.text())
			continue
		}
		for k, l := range g.Lines {
			if l.Box != n.Lines[k].Box {
				movedBoxes++
				t.Logf("image %d (JPEG) line %d: box %v in the guest, %v native", i, k, l.Box, n.Lines[k].Box)
			}
			confDrift = max(confDrift, math.Abs(l.Confidence-n.Lines[k].Confidence))
		}
	}
	t.Logf("%d PNGs: the same bytes. %d JPEGs: %d the same bytes as the guest's, texts equal, %d boxes moved, confidences within %.4f; "+
		"all the same bytes as the guest's on image/jpeg's pixels", len(images)-jpegs, jpegs, jpegSame, movedBoxes, confDrift)
}
