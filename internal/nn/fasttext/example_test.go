package fasttext_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/wasmjobs/wasmjobs/internal/nn/fasttext"
)

// Identify the language of a sentence with lid.176.ftz (from `make
// models`). Labels are "__label__" followed by the language code.
func ExampleModel_Predict() {
	m, err := fasttext.LoadFile("../../../models/lid.176.ftz")
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range m.Predict("Der Zug fährt um acht Uhr ab.", 2, 0) {
		fmt.Printf("%s %.2f\n", strings.TrimPrefix(p.Label, "__label__"), p.Prob)
	}
}
