package bnorm_test

import (
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
