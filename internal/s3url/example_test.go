package s3url_test

import (
	"fmt"
	"log"

	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

func ExampleParseObjectURL() {
	u, err := s3url.ParseObjectURL("s3://scans/2024/page-001.png")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(u.Bucket)
	fmt.Println(u.Key)
	fmt.Println(u)

	_, err = s3url.ParseObjectURL("s3://scans")
	fmt.Println(err)
	// Output:
	// scans
	// 2024/page-001.png
	// s3://scans/2024/page-001.png
	// "s3://scans" has no object key: want s3://bucket/key
}
