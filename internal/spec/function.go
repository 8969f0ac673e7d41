package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// functions returns the function table of a configuration in dir: the part
// of go-cty's standard library that Terraform exposes under the same names,
// plus file, try and can. It is built per Load because file is bound to
// the directory.
//
// Left out on purpose: range and setproduct, whose results can be made
// arbitrarily large by a short expression.
func functions(dir string) map[string]function.Function {
	fns := map[string]function.Function{
		"abs":             stdlib.AbsoluteFunc,
		"ceil":            stdlib.CeilFunc,
		"chomp":           stdlib.ChompFunc,
		"chunklist":       stdlib.ChunklistFunc,
		"coalesce":        stdlib.CoalesceFunc,
		"coalescelist":    stdlib.CoalesceListFunc,
		"compact":         stdlib.CompactFunc,
		"concat":          stdlib.ConcatFunc,
		"contains":        stdlib.ContainsFunc,
		"csvdecode":       csvDecodeFunc,
		"distinct":        stdlib.DistinctFunc,
		"element":         stdlib.ElementFunc,
		"file":            fileFunc(dir),
		"flatten":         stdlib.FlattenFunc,
		"floor":           stdlib.FloorFunc,
		"format":          stdlib.FormatFunc,
		"formatdate":      stdlib.FormatDateFunc,
		"formatlist":      stdlib.FormatListFunc,
		"indent":          stdlib.IndentFunc,
		"join":            stdlib.JoinFunc,
		"jsondecode":      stdlib.JSONDecodeFunc,
		"jsonencode":      stdlib.JSONEncodeFunc,
		"keys":            stdlib.KeysFunc,
		"length":          lengthFunc,
		"log":             stdlib.LogFunc,
		"lookup":          stdlib.LookupFunc,
		"lower":           stdlib.LowerFunc,
		"max":             stdlib.MaxFunc,
		"merge":           stdlib.MergeFunc,
		"min":             stdlib.MinFunc,
		"parseint":        stdlib.ParseIntFunc,
		"pow":             stdlib.PowFunc,
		"regex":           stdlib.RegexFunc,
		"regexall":        stdlib.RegexAllFunc,
		"replace":         stdlib.ReplaceFunc,
		"reverse":         stdlib.ReverseListFunc,
		"setintersection": stdlib.SetIntersectionFunc,
		"setsubtract":     stdlib.SetSubtractFunc,
		"setunion":        stdlib.SetUnionFunc,
		"signum":          stdlib.SignumFunc,
		"slice":           stdlib.SliceFunc,
		"sort":            stdlib.SortFunc,
		"split":           stdlib.SplitFunc,
		"strlen":          stdlib.StrlenFunc,
		"strrev":          stdlib.ReverseFunc,
		"substr":          stdlib.SubstrFunc,
		"timeadd":         stdlib.TimeAddFunc,
		"title":           stdlib.TitleFunc,
		"tobool":          stdlib.MakeToFunc(cty.Bool),
		"tolist":          stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"tomap":           stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
		"tonumber":        stdlib.MakeToFunc(cty.Number),
		"toset":           stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
		"tostring":        stdlib.MakeToFunc(cty.String),
		"trim":            stdlib.TrimFunc,
		"trimprefix":      stdlib.TrimPrefixFunc,
		"trimspace":       stdlib.TrimSpaceFunc,
		"trimsuffix":      stdlib.TrimSuffixFunc,
		"upper":           stdlib.UpperFunc,
		"values":          stdlib.ValuesFunc,
		"zipmap":          stdlib.ZipmapFunc,
	}
	for name, f := range fns {
		fns[name] = hideSensitiveErrors(f)
	}
	// try and can take unevaluated expressions; their errors are the
	// diagnostics of the expressions, which hcl already keeps clean.
	fns["try"] = tryfunc.TryFunc
	fns["can"] = tryfunc.CanFunc
	return fns
}

// errSensitiveArgument replaces the error of a function called with a
// sensitive argument.
var errSensitiveArgument = errors.New("the argument is (or is derived from) a sensitive value, so the details of this error are hidden")

// hideSensitiveErrors wraps f so that when any argument is sensitive its
// errors say so instead of what f says: several cty functions quote their
// argument in errors (tonumber: cannot convert "sk-..." to number), and
// those errors become diagnostic text.
func hideSensitiveErrors(f function.Function) function.Function {
	params := f.Params()
	for i := range params {
		params[i].AllowMarked = true // f.Call unmarks and re-marks as f's own parameters say
	}
	varParam := f.VarParam()
	if varParam != nil {
		varParam.AllowMarked = true
	}
	hide := func(args []cty.Value, err error) error {
		if err == nil {
			return nil
		}
		for _, a := range args {
			if a.HasMarkDeep(sensitiveMark) {
				var argErr function.ArgError
				if errors.As(err, &argErr) {
					return function.NewArgError(argErr.Index, errSensitiveArgument)
				}
				return errSensitiveArgument
			}
		}
		return err
	}
	return function.New(&function.Spec{
		Description: f.Description(),
		Params:      params,
		VarParam:    varParam,
		Type: func(args []cty.Value) (cty.Type, error) {
			ty, err := f.ReturnTypeForValues(args)
			return ty, hide(args, err)
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			v, err := f.Call(args)
			return v, hide(args, err)
		},
	})
}

// lengthFunc is Terraform's length: like cty's, but also counting the
// characters of a string and the attributes of an object.
var lengthFunc = function.New(&function.Spec{
	Description: "Returns the number of elements of a collection or structure, or of characters in a string.",
	Params: []function.Parameter{{
		Name:             "value",
		Type:             cty.DynamicPseudoType,
		AllowDynamicType: true,
	}},
	Type: func(args []cty.Value) (cty.Type, error) {
		ty := args[0].Type()
		if ty == cty.String || ty.IsCollectionType() || ty.IsTupleType() || ty.IsObjectType() || ty == cty.DynamicPseudoType {
			return cty.Number, nil
		}
		return cty.NilType, errors.New("argument must be a string, a collection or a structure")
	},
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		v := args[0]
		switch ty := v.Type(); {
		case ty == cty.String:
			return stdlib.Strlen(v)
		case ty.IsObjectType():
			return cty.NumberIntVal(int64(len(ty.AttributeTypes()))), nil
		default:
			return v.Length(), nil
		}
	},
})

// fileFunc is file(path): the contents of a UTF-8 file inside dir. A path
// that resolves outside dir (absolute, through "..", or through a symbolic
// link) is refused, so that a configuration (perhaps from a pull request)
// cannot read other files of the machine into a plan (principle 5,
// docs/principles.md).
func fileFunc(dir string) function.Function {
	return function.New(&function.Spec{
		Description: "Reads the contents of a file in the configuration directory as a UTF-8 string.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			path, err := pathInside(dir, args[0].AsString())
			if err != nil {
				return cty.NilVal, function.NewArgError(0, err)
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return cty.NilVal, function.NewArgError(0, fmt.Errorf("cannot read %q: %w", args[0].AsString(), errors.Unwrap(err)))
			}
			if !utf8.Valid(src) {
				return cty.NilVal, function.NewArgError(0, fmt.Errorf("%q is not valid UTF-8 text", args[0].AsString()))
			}
			return cty.StringVal(string(src)), nil
		},
	})
}

// pathInside resolves name relative to dir and returns it if it is inside
// dir, both as written and after following symbolic links.
func pathInside(dir, name string) (string, error) {
	if name == "" {
		return "", errors.New("the path is empty")
	}
	outside := fmt.Errorf("%q is outside the configuration directory %s; file() reads only files inside it", name, dir)
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	if !within(dir, filepath.Clean(path)) {
		return "", outside
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("cannot resolve the configuration directory: %w", errors.Unwrap(err))
	}
	realPath, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("no file exists at %q", name)
	}
	if !within(realDir, realPath) {
		return "", outside
	}
	return realPath, nil
}

// within reports whether the clean absolute path p is dir or below it.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
