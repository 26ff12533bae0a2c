package e2e_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/internal/testworker"
	"github.com/wasmjobs/wasmjobs/jobs"
)

// BenchmarkOCRShards reads BenchmarkOCRPipeline's images (the 200 rendered
// lines and the two pages) with one `wasmjobs worker` process at its
// default concurrency, as two batches:
//
//   - objects: one S3 object per image (NNNNNN.png or .jpg), a batch over
//     their prefix, one job per object;
//   - tar-shards: the same images as the members of one tar object, in the
//     WebDataset layout (a sample per image, its member NNNNNN.png or
//     .jpg), a record batch (`--records tar`, the default shard sizes),
//     one job per shard; the ocr guest does not speak the records ABI, so
//     the worker runs it once per image on a fresh instance.
//
// Each is timed from the batch's start until its manifest is written, and
// reports images/s; tar-shards also of-objects, its images/s over the
// objects batch's, and how many shards the plan made.
func BenchmarkOCRShards(b *testing.B) {
	set := newOCRSet(b)
	redis := testenv.Redis(b)
	store, bucket := testenv.Store(b)
	ctx := testenv.Context(b, 30*time.Minute)
	startOCRWorker(b, ctx, redis, store)
	c, err := batch.NewClient(redis)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()

	var shard bytes.Buffer
	tw := tar.NewWriter(&shard)
	for i, img := range set.images {
		name := fmt.Sprintf("%06d.jpg", i)
		if img.png {
			name = fmt.Sprintf("%06d.png", i)
		}
		if err := store.Put(ctx, s3url.ObjectURL{Bucket: bucket, Key: "objects/" + name}, img.image, "application/octet-stream", nil); err != nil {
			b.Fatal(err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(img.image))}); err != nil {
			b.Fatal(err)
		}
		if _, err := tw.Write(img.image); err != nil {
			b.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := store.Put(ctx, s3url.ObjectURL{Bucket: bucket, Key: "shards/images-000000.tar"}, shard.Bytes(), "application/x-tar", nil); err != nil {
		b.Fatal(err)
	}
	warmUpOCR(b, ctx, redis, store, bucket, set)

	n := len(set.images)
	var rates [2]float64
	run := func(b *testing.B, side int, spec batch.Spec) {
		var total time.Duration
		var shards int64
		for i := range b.N {
			spec.ID = fmt.Sprintf("ocr-%d-%d", side, i)
			spec.Output = fmt.Sprintf("s3://%s/out-%s/", bucket, spec.ID)
			began := time.Now()
			st := testworker.RunBatch(b, ctx, c, spec)
			total += time.Since(began)
			if side == 0 && st.Done != int64(n) || side == 1 && (st.RecordsDone != int64(n) || st.RecordErrors != 0 || st.Done != st.Total) {
				b.Fatalf("batch %s: %d of %d items done, %d failed; records %d done, %d errors (%s)",
					spec.ID, st.Done, st.Total, st.Failed, st.RecordsDone, st.RecordErrors, st.Error)
			}
			shards += st.Total
		}
		rates[side] = float64(b.N*n) / total.Seconds()
		b.ReportMetric(rates[side], "images/s")
		if side == 1 {
			b.ReportMetric(float64(shards)/float64(b.N), "shards")
		}
	}
	b.Run("objects", func(b *testing.B) {
		run(b, 0, batch.Spec{Guest: "ocr", Type: "image", Input: "s3://" + bucket + "/objects/"})
	})
	b.Run("tar-shards", func(b *testing.B) {
		run(b, 1, batch.Spec{Guest: "ocr", Type: "image", Input: "s3://" + bucket + "/shards/", Records: &batch.RecordsSpec{Format: "tar"}})
		if rates[0] > 0 && rates[1] > 0 {
			b.ReportMetric(rates[1]/rates[0], "of-objects")
		}
	})
}

// warmUpOCR runs a few of the images as jobs: the guest compiled and the
// models loaded before anything is timed.
func warmUpOCR(b *testing.B, ctx context.Context, redis asynq.RedisClientOpt, store *blob.Store, bucket string, set ocrSet) {
	client, err := jobs.NewClient(redis)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	for _, i := range set.warmUp() {
		in := s3url.ObjectURL{Bucket: bucket, Key: fmt.Sprintf("warm-up/%03d", i)}
		if err := store.Put(ctx, in, set.images[i].image, "application/octet-stream", nil); err != nil {
			b.Fatal(err)
		}
		if _, err := client.Run(ctx, jobs.TypeImage, jobs.Payload{Guest: "ocr", Input: in.String(), Output: in.String() + ".json"}); err != nil {
			b.Fatal(err)
		}
	}
}
