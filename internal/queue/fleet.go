package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// FleetKey is the hash in which each running worker announces what it
// serves: field the worker's id, value a JSON WorkerInfo. A worker renews
// its entry every FleetRenew and withdraws it when it stops; an entry not
// renewed within FleetTTL is a worker that died, which readers skip and
// remove.
const FleetKey = "wasmjobs:workers"

// How often a worker renews its fleet entry, and how long one lasts.
const (
	FleetRenew = 20 * time.Second
	FleetTTL   = 60 * time.Second
)

// WorkerInfo is one worker's fleet entry.
type WorkerInfo struct {
	ID     string   `json:"id"`
	Host   string   `json:"host"`
	Queues []string `json:"queues"`
	// Models are the WASI-NN model names the worker registered.
	Models []string `json:"models"`
	// Until is when the entry lapses unless renewed.
	Until time.Time `json:"until"`
}

// Announce writes (or renews) w's fleet entry, lasting FleetTTL from now.
func Announce(ctx context.Context, rdb redis.Cmdable, w WorkerInfo) error {
	w.Until = time.Now().Add(FleetTTL).UTC()
	b, err := json.Marshal(w)
	if err != nil {
		return err
	}
	if err := rdb.HSet(ctx, FleetKey, w.ID, b).Err(); err != nil {
		return fmt.Errorf("announce worker %s: %w", w.ID, err)
	}
	return nil
}

// Withdraw removes worker id's fleet entry.
func Withdraw(ctx context.Context, rdb redis.Cmdable, id string) error {
	if err := rdb.HDel(ctx, FleetKey, id).Err(); err != nil {
		return fmt.Errorf("withdraw worker %s: %w", id, err)
	}
	return nil
}

// LiveWorkers returns the fleet entries not lapsed, and removes lapsed
// (and unreadable) ones.
func LiveWorkers(ctx context.Context, rdb redis.Cmdable) ([]WorkerInfo, error) {
	all, err := rdb.HGetAll(ctx, FleetKey).Result()
	if err != nil {
		return nil, fmt.Errorf("read the workers: %w", err)
	}
	now := time.Now()
	var live []WorkerInfo
	var lapsed []string
	for id, v := range all {
		var w WorkerInfo
		if json.Unmarshal([]byte(v), &w) != nil || !w.Until.After(now) {
			lapsed = append(lapsed, id)
			continue
		}
		w.ID = id
		live = append(live, w)
	}
	if len(lapsed) > 0 {
		_ = rdb.HDel(ctx, FleetKey, lapsed...).Err() // a reader's tidying; the next one tries again
	}
	return live, nil
}
