package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// LockInfo says who holds a state file's lock. It is written into the lock
// file, so that a waiting run can name the holder.
type LockInfo struct {
	ID        string    `json:"id"`
	Operation string    `json:"operation"` // plan, apply
	PID       int       `json:"pid"`
	Host      string    `json:"host"`
	Who       string    `json:"who"`
	Created   time.Time `json:"created"`
}

// LockedError is returned by Lock when another process held the lock for
// the whole timeout.
type LockedError struct {
	Path   string
	Holder LockInfo
}

func (e *LockedError) Error() string {
	h := e.Holder
	return fmt.Sprintf("state %s is locked by %s (pid %d on %s, %s, since %s, lock ID %s); wait for it to finish, or raise -lock-timeout",
		e.Path, h.Who, h.PID, h.Host, h.Operation, h.Created.Format(time.RFC3339), h.ID)
}

// Lock is a held lock on a state file. Only one run that changes the state
// (plan, apply, a daemon cycle) holds it at a time (README.md, "How it works").
// It is an advisory lock on the file path+".lock", taken with flock(2):
// the kernel releases it when the holder dies, so a crash never leaves the
// state locked.
type Lock struct {
	f *os.File
}

// AcquireLock takes the lock of the state file at path, waiting up to
// timeout for another holder to release it.
func AcquireLock(ctx context.Context, path string, info LockInfo, timeout time.Duration) (*Lock, error) {
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock state %s: %w", path, err)
	}
	if info.ID == "" {
		buf := make([]byte, 8)
		rand.Read(buf)
		info.ID = hex.EncodeToString(buf)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := tryLock(f)
		if err == nil {
			break
		}
		if !errors.Is(err, errWouldBlock) {
			f.Close()
			return nil, fmt.Errorf("lock state %s: %w", path, err)
		}
		if !time.Now().Before(deadline) {
			holder, free := namedHolder(f, path+".lock")
			if free {
				break
			}
			f.Close()
			return nil, &LockedError{Path: path, Holder: holder}
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	b, _ := json.Marshal(info)
	if err := f.Truncate(0); err == nil {
		f.WriteAt(b, 0)
	}
	return &Lock{f: f}, nil
}

// namedHolder reads who holds the lock. A holder writes its name just
// after taking the lock and clears it just before letting go, so the file
// can be empty for a moment: it looks again, briefly, until it names
// someone or the lock comes free (free: f now holds it).
func namedHolder(f *os.File, path string) (holder LockInfo, free bool) {
	holder = readHolder(path)
	for i := 0; holder.PID == 0 && i < 50; i++ {
		time.Sleep(time.Millisecond)
		if tryLock(f) == nil {
			return LockInfo{}, true
		}
		holder = readHolder(path)
	}
	return holder, false
}

func readHolder(path string) LockInfo {
	var h LockInfo
	b, err := os.ReadFile(path)
	if err == nil {
		json.Unmarshal(b, &h)
	}
	return h
}

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	l.f.Truncate(0)
	if err := unlock(l.f); err != nil {
		l.f.Close()
		return err
	}
	return l.f.Close()
}

// ErrNoLockHolder is returned by ForceUnlock when the lock file names no
// holder.
var ErrNoLockHolder = errors.New("no lock holder is recorded")

// ForceUnlock clears the lock of the state file at path (`ddctl
// force-unlock ID`), but only if the holder recorded in path+".lock" has
// the lock ID id; otherwise it returns an error naming the holder, or
// ErrNoLockHolder.
//
// A lock normally needs no clearing: flock(2) is released by the kernel
// when its holder dies. This is for a lock that outlived its holder on a
// file system where it was not released (some network file systems). It
// removes the lock file, so the next run locks a new one; if the holder is
// in fact alive, two runs could then change the state at once, so the
// caller must be sure it is not.
func ForceUnlock(path, id string) error {
	name := path + ".lock"
	b, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("force-unlock state %s: %w", path, ErrNoLockHolder)
	}
	if err != nil {
		return fmt.Errorf("force-unlock state %s: %w", path, err)
	}
	var h LockInfo
	if len(b) == 0 || json.Unmarshal(b, &h) != nil || h.ID == "" {
		return fmt.Errorf("force-unlock state %s: %w", path, ErrNoLockHolder)
	}
	if h.ID != id {
		return fmt.Errorf("force-unlock state %s: lock ID %s is not the holder's: held by %s (pid %d on %s, %s, since %s, lock ID %s)",
			path, id, h.Who, h.PID, h.Host, h.Operation, h.Created.Format(time.RFC3339), h.ID)
	}
	if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("force-unlock state %s: %w", path, err)
	}
	return nil
}
