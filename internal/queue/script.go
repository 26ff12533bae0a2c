package queue

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// EvalPipelined runs script once per call of add in one pipelined round
// trip, by its SHA. When Redis does not know the script (NOSCRIPT: a fresh
// or flushed server), it loads it and runs the pipeline once more. It
// returns the pipeline's commands, one per add call, and the first error;
// the commands are nil when the script could not be loaded.
func EvalPipelined(ctx context.Context, rdb redis.UniversalClient, script *redis.Script, add func(pipe redis.Pipeliner)) ([]redis.Cmder, error) {
	run := func() ([]redis.Cmder, error) {
		pipe := rdb.Pipeline()
		add(pipe)
		return pipe.Exec(ctx)
	}
	cmds, err := run()
	if IsNoScript(err) {
		if err := script.Load(ctx, rdb).Err(); err != nil {
			return nil, fmt.Errorf("load script: %w", err)
		}
		cmds, err = run()
	}
	return cmds, err
}

// IsNoScript reports whether err is Redis's NOSCRIPT: the script's SHA is
// not loaded.
func IsNoScript(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") }
