//go:build !unix

package state

import (
	"errors"
	"os"
)

var errWouldBlock = errors.New("lock held by another process")

func tryLock(*os.File) error { return errors.New("state locking needs a Unix system") }

func unlock(*os.File) error { return nil }
