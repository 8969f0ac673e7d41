package reconcile

import (
	"log/slog"
)

func slogLevel(s ResultStatus) slog.Level {
	if s == ResultSucceeded {
		return slog.LevelInfo
	}
	return slog.LevelWarn
}

func attrs(r ActionResult) []slog.Attr {
	return []slog.Attr{
		slog.String("address", r.Action.Address),
		slog.String("status", string(r.Status)),
		slog.String("snap_code", r.Code),
	}
}
