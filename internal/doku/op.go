package doku

// Op names a SNAP operation. Its String is the name the sandbox counts
// calls under (GET /sandbox/stats).
type Op int

// The operations of Allo Bank direct debit.
const (
	OpTokenB2B Op = iota + 1
	OpTokenB2B2C
	OpBinding
	OpBalance
	OpPayment
	OpStatus
	OpRefund
	OpUnbinding
)

var opNames = [...]string{
	OpTokenB2B:   "token_b2b",
	OpTokenB2B2C: "token_b2b2c",
	OpBinding:    "binding",
	OpBalance:    "balance",
	OpPayment:    "payment",
	OpStatus:     "status",
	OpRefund:     "refund",
	OpUnbinding:  "unbinding",
}

func (o Op) String() string {
	if o <= 0 || int(o) >= len(opNames) {
		return "unknown_op"
	}
	return opNames[o]
}

// Mutating reports whether the operation moves money or changes a binding,
// so that an unanswered call leaves its outcome unknown.
func (o Op) Mutating() bool {
	switch o {
	case OpBinding, OpPayment, OpRefund, OpUnbinding:
		return true
	}
	return false
}

// Path is the operation's endpoint path.
func (o Op) Path() string {
	switch o {
	case OpTokenB2B:
		return PathTokenB2B
	case OpTokenB2B2C:
		return PathTokenB2B2C
	case OpBinding:
		return PathBinding
	case OpBalance:
		return PathBalance
	case OpPayment:
		return PathPayment
	case OpStatus:
		return PathStatus
	case OpRefund:
		return PathRefund
	case OpUnbinding:
		return PathUnbinding
	}
	return ""
}

// Service is the operation's SNAP service code.
func (o Op) Service() string {
	switch o {
	case OpTokenB2B:
		return ServiceTokenB2B
	case OpTokenB2B2C:
		return ServiceTokenB2B2C
	case OpBinding:
		return ServiceBinding
	case OpBalance:
		return ServiceBalance
	case OpPayment:
		return ServicePayment
	case OpStatus:
		return ServiceStatus
	case OpRefund:
		return ServiceRefund
	case OpUnbinding:
		return ServiceUnbinding
	}
	return "00"
}
