package sandbox

import "math/rand"

// fakeRandomSeed is the seed of wazero's deterministic random source
// (internal/platform.NewFakeRandSource).
const fakeRandomSeed = 42

// fakeRandom is wazero's default random source for a guest, the same
// deterministic stream (math/rand seeded with 42), made on the guest's first
// random_get instead of at every instantiation: seeding math/rand's source
// costs about 7 µs and 5 KB, most guests never ask for random bytes, and a
// fresh instance per job would pay it on every job.
type fakeRandom struct {
	r *rand.Rand
}

func (f *fakeRandom) Read(p []byte) (int, error) {
	if f.r == nil {
		f.r = rand.New(rand.NewSource(fakeRandomSeed))
	}
	return f.r.Read(p)
}
