package jobs_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wasmjobs/wasmjobs/jobs"
)

func ExampleNewTask() {
	// A text job reading its input from S3.
	task, opts, err := jobs.NewTask(jobs.TypeText, jobs.Payload{
		Guest:  "wordcount",
		Input:  "s3://docs/2024/report.txt",
		Params: map[string]string{"lang": "en"},
	}, jobs.Queue("text"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(task.Type())
	fmt.Println(string(task.Payload()))
	fmt.Println(opts)

	// An inline job without output: its result comes back through asynq's
	// result writer, so NewTask adds the default retention.
	task, opts, err = jobs.NewTask(jobs.TypeText, jobs.Payload{Guest: "hello", Data: []byte("world")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(task.Payload()))
	fmt.Println(opts)

	// Invalid payloads never become tasks.
	_, _, err = jobs.NewTask(jobs.TypeImage, jobs.Payload{Guest: "ocr", Input: "https://example.com/scan.png"})
	fmt.Println(err)
	// Output:
	// wasm:text
	// {"guest":"wordcount","input":"s3://docs/2024/report.txt","params":{"lang":"en"}}
	// [Queue("text")]
	// {"guest":"hello","data":"d29ybGQ="}
	// [Retention(24h0m0s)]
	// invalid job payload: input: "https://example.com/scan.png" is not an s3://bucket/key URL
}

// ExampleClient needs a Redis and a worker fleet, so it is compiled but not
// run.
func ExampleClient() {
	client, err := jobs.NewClient(asynq.RedisClientOpt{Addr: "localhost:6379"})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Enqueue now, read the result later (within DefaultResultRetention).
	info, err := client.EnqueueText(ctx, jobs.Payload{Guest: "hello", Data: []byte("world")},
		jobs.MaxRetry(3), jobs.Timeout(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	res, err := client.Result(ctx, info.Queue, info.ID)
	if err != nil {
		log.Println(err) // ErrNotDone while the job is pending or running
	} else {
		fmt.Printf("%s\n", res)
	}

	// Or enqueue and wait in one call.
	res, err = client.Run(ctx, jobs.TypeText, jobs.Payload{Guest: "hello", Data: []byte("again")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", res)
}
