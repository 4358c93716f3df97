package bnorm_test

import (
	"errors"
	"fmt"
	"testing"

	"bnorm"
)

// A program built against one header may load another library version.
func TestLoadedLibraryMatchesTheHeader(t *testing.T) {
	if bnorm.LibraryVersion() != bnorm.HeaderVersion {
		t.Fatalf("header %d, library %d", bnorm.HeaderVersion, bnorm.LibraryVersion())
	}
	v := bnorm.LibraryVersion()
	if want := fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100); bnorm.Version() != want {
		t.Errorf("Version() = %q, want %q", bnorm.Version(), want)
	}
	if bnorm.ActiveTarget() == "" {
		t.Error("ActiveTarget() is empty")
	}
}

// The binding wraps the split phases and the residual add, which bnorm 1.2
// added: it needs 1.2 (a 1.1 header fails the build), and so does everything
// it is tested against.
func TestRequiresVersion1_2(t *testing.T) {
	if bnorm.RequiredVersion != 10200 {
		t.Errorf("RequiredVersion = %d, want 10200 (1.2.0)", bnorm.RequiredVersion)
	}
	if bnorm.HeaderVersion < bnorm.RequiredVersion || bnorm.HeaderVersion/10000 != 1 {
		t.Errorf("built against header %d, which RequiredVersion %d excludes",
			bnorm.HeaderVersion, bnorm.RequiredVersion)
	}
	if v := bnorm.LibraryVersion(); v < bnorm.RequiredVersion || v/10000 != 1 {
		t.Errorf("the loaded library is %d; the binding needs 1.x at least %d", v,
			bnorm.RequiredVersion)
	}
}

// An older libbnorm.so.1 loaded at run time: the functions it lacks return a
// *VersionError instead of calling a symbol it does not export (which would
// end the process), and write nothing; the ones it has still work.
func TestFunctionsNewerThanTheLoadedLibrary(t *testing.T) {
	fold := newFoldCall()
	s := newSplitCall()
	res := newResidualCall()
	calls := []struct {
		op    string
		since uint32
		call  func() error
	}{
		{"FoldScaleShift", 10100, fold.foldScaleShift},
		{"ForwardScaleShift", 10100, fold.forwardScaleShift},
		{"FoldIntoLayer", 10100, fold.foldIntoLayer},
		{"LocalStats", 10200, s.localStats},
		{"MergeStats", 10200, s.mergeStats},
		{"ForwardNormalize", 10200, s.forwardNormalize},
		{"BackwardReduce", 10200, s.backwardReduce},
		{"BackwardElementwise", 10200, s.backwardElementwise},
		{"ForwardInferenceResidual", 10200, res.inferenceResidual},
		{"ForwardTrainingResidual", 10200, res.trainingResidual},
		{"BackwardResidual", 10200, res.backwardResidual},
	}
	for _, have := range []uint32{10000, 10100, 10105} {
		func() {
			defer bnorm.PretendLoadedVersion(have)()
			for _, c := range calls {
				beforeFold, beforeSplit, beforeRes := snapshot(fold), snapshotSplit(s), snapshot(res)
				err := c.call()
				if have >= c.since {
					if err != nil {
						t.Errorf("library %d: %s: %v", have, c.op, err)
					}
					continue
				}
				var e *bnorm.VersionError
				if !errors.As(err, &e) {
					t.Fatalf("library %d: %s: got %v, want a *bnorm.VersionError", have, c.op, err)
				}
				if want := (bnorm.VersionError{Op: c.op, Need: c.since, Have: have}); *e != want {
					t.Errorf("got %+v, want %+v", *e, want)
				}
				if !errors.Is(err, bnorm.ErrLibraryVersion) || errors.Is(err, bnorm.ErrLength) {
					t.Errorf("%v: errors.Is matches the wrong sentinels", err)
				}
				expectUnchanged(t, fold, beforeFold)
				expectSplitUnchanged(t, s, beforeSplit)
				expectUnchanged(t, res, beforeRes)
			}
		}()
	}
	defer bnorm.PretendLoadedVersion(10100)()
	expectErrorText(t, s.mergeStats(),
		"bnorm: MergeStats needs libbnorm 1.2.0 or later, but the loaded library is 1.1.0")
	// The 1.0 calls need nothing newer.
	b := newBatch(bnorm.NewDescriptor(3), bnorm.Shape{2, 3, 4}, 1)
	if err := b.training(); err != nil {
		t.Error(err)
	}
}
