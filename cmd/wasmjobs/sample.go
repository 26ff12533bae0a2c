package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// sampleTexts is the small text dataset of `wasmjobs dev`.
var sampleTexts = map[string]string{
	"texts/queue.txt":   "A queue turns a burst of work into a steady stream.\nWorkers take one job at a time, and the queue remembers the rest.\n",
	"texts/sandbox.txt": "Untrusted bytes are parsed inside the sandbox, never by the host.\nA guest that loops forever is stopped at its deadline.\n",
	"texts/cache.txt":   "Compile once, run many times: the compiled guest is cached in memory and on disk, so a restarted worker starts its first job in milliseconds.",
	"texts/greek.txt":   "Η ουρά κρατά τη δουλειά μέχρι να έρθει η σειρά της.\n",
	"texts/poem.txt":    "small jobs, small guests,\nmany at once, none at rest;\nthe queue hums along.\n",
}

// sampleNames are greeted by inline hello jobs, whose results come back
// through the task result rather than S3.
var sampleNames = []string{"Ada", "Grace", "NodeJS"}

// sampleSentences are identified by inline langid jobs.
var sampleSentences = []string{
	"The train to the city leaves every morning at half past seven.",
	"Der Zug in die Stadt fährt jeden Morgen um halb acht ab.",
	"Le train pour la ville part tous les matins à sept heures et demie.",
	"El tren a la ciudad sale todas las mañanas a las siete y media.",
	"Поезд в город отправляется каждое утро в половине восьмого.",
}

// sampleImages are rendered into PNGs for the ocr guest: one line each.
var sampleImages = map[string][]string{
	"images/invoice.png": {"Invoice 2026-0417", "Total due: 1,284.50 EUR"},
	"images/sign.png":    {"Queue scale, sandboxed guests"},
}

// sampleRecords makes the record datasets of `wasmjobs dev`: a JSON lines
// file of reviews (the sample sentences, each several times, and one line
// without the text field) and a WebDataset tar shard of samples, each a
// rendered line of text (.png, or .txt without OCR) and its metadata
// (.json).
func sampleRecords(images bool) (jsonl, shard []byte, err error) {
	var b bytes.Buffer
	for i := range 4 {
		for j, s := range sampleSentences {
			fmt.Fprintf(&b, "{\"id\":%d,\"text\":%q}\n", i*len(sampleSentences)+j, s)
		}
	}
	b.WriteString("{\"id\":-1,\"note\":\"no text field: this record gets an error line\"}\n")
	jsonl = b.Bytes()

	var t bytes.Buffer
	tw := tar.NewWriter(&t)
	add := func(name string, body []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	for i, line := range []string{"Sample one of the shard", "Records, not objects", "Merged in input order", "Four samples, two shards"} {
		key := fmt.Sprintf("%06d", i)
		body, ext := []byte(line), ".txt"
		if images {
			if body, err = renderLines([]string{line}, 40); err != nil {
				return nil, nil, err
			}
			ext = ".png"
		}
		if err := add(key+ext, body); err != nil {
			return nil, nil, err
		}
		if err := add(key+".json", fmt.Appendf(nil, `{"caption":%q}`, line)); err != nil {
			return nil, nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, nil, err
	}
	return jsonl, t.Bytes(), nil
}

// renderLines draws lines of black text on white with the Go font.
func renderLines(lines []string, size float64) ([]byte, error) {
	f, err := opentype.Parse(goregular.TTF)
	if err != nil {
		return nil, err
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return nil, err
	}
	defer face.Close()
	margin := int(size)
	lineH := int(size * 1.6)
	width := 0
	for _, l := range lines {
		width = max(width, font.MeasureString(face, l).Ceil())
	}
	img := image.NewRGBA(image.Rect(0, 0, width+2*margin, len(lines)*lineH+2*margin))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	d := &font.Drawer{Dst: img, Src: image.NewUniform(color.Black), Face: face}
	for i, l := range lines {
		d.Dot = fixed.P(margin, margin+i*lineH+int(size))
		d.DrawString(l)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode sample image: %w", err)
	}
	return buf.Bytes(), nil
}
