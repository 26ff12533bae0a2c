package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/gomedium"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// fonts are the Go fonts the test text is rendered in.
var fonts = []struct {
	name string
	ttf  []byte
}{
	{"goregular", goregular.TTF},
	{"gomedium", gomedium.TTF},
	{"gobold", gobold.TTF},
	{"gomono", gomono.TTF},
}

func face(t testing.TB, font int, px float64) font.Face {
	t.Helper()
	f, err := opentype.Parse(fonts[font].ttf)
	if err != nil {
		t.Fatal(err)
	}
	ff, err := opentype.NewFace(f, &opentype.FaceOptions{Size: px, DPI: 72, Hinting: fontHinting})
	if err != nil {
		t.Fatal(err)
	}
	return ff
}

const fontHinting = font.HintingFull

// renderLines draws lines of text, black on white, one under the other with
// a margin of half the font size around them.
func renderLines(t testing.TB, lines []string, fontIdx int, px float64) *image.RGBA {
	t.Helper()
	f := face(t, fontIdx, px)
	defer f.Close()
	m := f.Metrics()
	ascent, lineH := m.Ascent.Ceil(), (m.Ascent + m.Descent).Ceil()
	gap := int(px * 0.6)
	margin := int(px / 2)
	w := 0
	for _, l := range lines {
		w = max(w, font.MeasureString(f, l).Ceil())
	}
	h := len(lines)*lineH + (len(lines)-1)*gap
	img := image.NewRGBA(image.Rect(0, 0, w+2*margin, h+2*margin))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	d := font.Drawer{Dst: img, Src: image.NewUniform(color.Black), Face: f}
	for i, l := range lines {
		d.Dot = fixed.P(margin, margin+i*(lineH+gap)+ascent)
		d.DrawString(l)
	}
	return img
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var words = strings.Fields(`
the of and to in is for on with as by at from that this be are was it or an
queue worker guest image text model batch job result output input cloud data
server memory sandbox module network storage object bucket window station
river mountain garden yellow purple orange silver coffee morning evening
quick brown fox jumps over lazy dog paper letter number market school house
Monday Friday April London Paris Berlin Tokyo Alice Bob Carol David Emma
Invoice Total Amount Street Road Avenue Phone Email Order Price Item Page
`)

var punct = []string{",", ".", ":", ";", "!", "?", "-", "/", "%", "'", "&", "+", "#", "(", ")"}

// sampleLine returns a deterministic pseudo-random line: 2 to 6 tokens of
// words (some capitalized or upper-case), numbers and punctuation.
func sampleLine(r *rand.Rand) string {
	n := 2 + r.IntN(5)
	toks := make([]string, 0, n)
	for range n {
		var tok string
		switch k := r.IntN(10); {
		case k < 6:
			tok = words[r.IntN(len(words))]
			switch r.IntN(6) {
			case 0:
				tok = strings.ToUpper(tok[:1]) + tok[1:]
			case 1:
				tok = strings.ToUpper(tok)
			}
		case k < 8:
			switch r.IntN(4) {
			case 0:
				tok = fmt.Sprint(r.IntN(10000))
			case 1:
				tok = fmt.Sprintf("%d.%02d", r.IntN(1000), r.IntN(100))
			case 2:
				tok = fmt.Sprintf("%02d/%02d/%d", 1+r.IntN(28), 1+r.IntN(12), 1990+r.IntN(40))
			default:
				tok = fmt.Sprintf("%d%%", r.IntN(101))
			}
		default:
			tok = words[r.IntN(len(words))]
			p := punct[r.IntN(len(punct))]
			switch p {
			case "(", ")":
				tok = "(" + tok + ")"
			case "'":
				tok = tok + "'s"
			case "-", "/", "&", "+":
				tok = tok + p + words[r.IntN(len(words))]
			case "#":
				tok = "#" + fmt.Sprint(r.IntN(100))
			default:
				tok += p
			}
		}
		toks = append(toks, tok)
	}
	return strings.Join(toks, " ")
}

// levenshtein is the edit distance between a and b in runes.
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			c := prev[j-1]
			if ra[i-1] != rb[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

func TestLevenshtein(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"héllo", "hello", 1}, {"a b", "ab", 1}} {
		if got := levenshtein(c.a, c.b); got != c.d {
			t.Errorf("levenshtein(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
}

// ocrResult is the ocr guest's output.
type ocrResult struct {
	Width  int `json:"width"`
	Height int `json:"height"`
	Lines  []struct {
		Text       string  `json:"text"`
		Confidence float64 `json:"confidence"`
		Box        [4]int  `json:"box"`
	} `json:"lines"`
}

// text joins the recognized lines with single spaces.
func (r *ocrResult) text() string {
	var parts []string
	for _, l := range r.Lines {
		parts = append(parts, l.Text)
	}
	return strings.Join(parts, " ")
}

// ocrCase is one rendered single-line image.
type ocrCase struct {
	text  string
	image []byte
	png   bool
}

// ocrCases renders n single-line images: deterministic text, the four Go
// fonts, sizes 30 to 64 px, PNG for even i and JPEG (quality 90) for odd i.
func ocrCases(t testing.TB, n int) []ocrCase {
	t.Helper()
	r := rand.New(rand.NewPCG(2024, 7))
	cases := make([]ocrCase, n)
	for i := range cases {
		text := sampleLine(r)
		px := float64(30 + r.IntN(35))
		img := renderLines(t, []string{text}, i%len(fonts), px)
		c := ocrCase{text: text, png: i%2 == 0}
		if c.png {
			c.image = encodePNG(t, img)
		} else {
			c.image = encodeJPEG(t, img)
		}
		cases[i] = c
	}
	return cases
}

// pageLines are the lines of the rendered test pages, top to bottom.
var pageLines = []string{
	"Quarterly Report 2024",
	"Revenue grew 12% to $4.2 million.",
	"Orders shipped: 18,204 (up from 15,990)",
	"Contact: sales@example.com",
	"Next review: Friday, 14 March",
	"Thank you for your business!",
}

// ocrPage is one rendered page of pageLines.
type ocrPage struct {
	name string
	ocrCase
}

// pageCases renders pageLines twice: Go Regular at 36 px as PNG and Go Mono
// at 28 px as JPEG (quality 90).
func pageCases(t testing.TB) []ocrPage {
	t.Helper()
	text := strings.Join(pageLines, " ")
	regular := renderLines(t, pageLines, 0, 36)
	mono := renderLines(t, pageLines, 3, 28)
	return []ocrPage{
		{"regular-36-png", ocrCase{text: text, image: encodePNG(t, regular), png: true}},
		{"mono-28-jpeg", ocrCase{text: text, image: encodeJPEG(t, mono)}},
	}
}
