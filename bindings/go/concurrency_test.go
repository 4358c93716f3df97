package bnorm_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"bnorm"
)

// Goroutines move between OS threads, and the library's error message is per
// thread. Each goroutine alternates a failing call whose message names its
// own numbers with a successful one (which clears its thread's message), so
// a message read on the wrong thread would show up as empty or as another
// goroutine's. Results must equal serial ones bit for bit: the library's
// reduction order depends only on the shape, not on num_threads.
func TestConcurrentCalls(t *testing.T) {
	const goroutines, rounds = 16, 50
	type work struct {
		good, bad *batch
		want      *batch // the serial result
		initial   [][]float32
		message   string
	}
	jobs := make([]work, goroutines)
	for g := range jobs {
		channels := int64(3 + 2*g)
		desc := bnorm.NewDescriptor(channels)
		shape := bnorm.Shape{4, channels, 8, 8}
		want := newBatch(desc, shape, int64(g))
		if err := want.training(); err != nil {
			t.Fatal(err)
		}
		desc.NumThreads = int32(1 + g%2)
		mismatched := bnorm.NewDescriptor(100 + int64(g))
		jobs[g] = work{
			good:    newBatch(desc, shape, int64(g)),
			bad:     newBatch(mismatched, shape, int64(g)),
			want:    want,
			initial: snapshot(newBatch(desc, shape, int64(g))),
			message: fmt.Sprintf("input channel dimension (dim 1) is %d but num_features is %d",
				channels, 100+g),
		}
	}

	var wg sync.WaitGroup
	for g := range jobs {
		wg.Add(1)
		go func(j work) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				err := j.bad.training()
				if e, ok := err.(*bnorm.Error); !ok || e.Message != j.message {
					t.Errorf("got %v, want the message %q", err, j.message)
					return
				}
				runtime.Gosched()
				// Training updates the running statistics: start each round afresh.
				for i, buf := range j.good.buffers() {
					copy(buf, j.initial[i])
				}
				if err := j.good.training(); err != nil {
					t.Error(err)
					return
				}
				if !equalBits(j.good.y, j.want.y) || !equalBits(j.good.runningVar, j.want.runningVar) {
					t.Errorf("round %d: concurrent result differs from the serial one", r)
					return
				}
			}
		}(jobs[g])
	}
	wg.Wait()
}
