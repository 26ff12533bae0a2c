package jobs

import "time"

// SetWaitPoll sets how often c's Wait reads a job's state without a
// notification.
func SetWaitPoll(c *Client, d time.Duration) { c.poll = d }
