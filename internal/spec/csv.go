package spec

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// csvDecodeFunc is csvdecode(str[, separator]): the rows of a CSV table
// as a list of objects keyed by the header row, as Terraform's, but
// taking what spreadsheets write: a UTF-8 byte order mark, CRLF line
// ends, ";" or tab as the separator (given, or found in the header line
// when not), spaces around header names, and rows left empty at the end.
// Every value is a string. A row with more or fewer fields than the
// header, a header name used twice or left empty, is an error that names
// the row (counted from 1 after the header) and the line.
var csvDecodeFunc = function.New(&function.Spec{
	Description: "Parses CSV text into a list of objects, one per row, keyed by the header row.",
	Params:      []function.Parameter{{Name: "str", Type: cty.String}},
	VarParam:    &function.Parameter{Name: "separator", Type: cty.String},
	Type: func(args []cty.Value) (cty.Type, error) {
		for _, a := range args {
			if !a.IsKnown() {
				return cty.DynamicPseudoType, nil
			}
		}
		t, err := decodeCSV(args, true)
		if err != nil {
			return cty.DynamicPseudoType, err
		}
		return cty.List(cty.Object(t.types())), nil
	},
	Impl: func(args []cty.Value, retType cty.Type) (cty.Value, error) {
		t, err := decodeCSV(args, false)
		if err != nil {
			return cty.DynamicVal, err
		}
		if len(t.rows) == 0 {
			return cty.ListValEmpty(retType.ElementType()), nil
		}
		rows := make([]cty.Value, len(t.rows))
		for i, r := range t.rows {
			vals := make(map[string]cty.Value, len(r))
			for j, s := range r {
				vals[t.header[j]] = cty.StringVal(s)
			}
			rows[i] = cty.ObjectVal(vals)
		}
		return cty.ListVal(rows), nil
	},
})

type csvTable struct {
	header []string
	rows   [][]string
}

func (t csvTable) types() map[string]cty.Type {
	m := make(map[string]cty.Type, len(t.header))
	for _, h := range t.header {
		m[h] = cty.String
	}
	return m
}

// decodeCSV reads the table args describe: its header alone when
// headerOnly (for the result's type), else every row.
func decodeCSV(args []cty.Value, headerOnly bool) (csvTable, error) {
	var t csvTable
	text := strings.TrimPrefix(args[0].AsString(), "\uFEFF")
	sep, err := csvSeparator(args[1:], text)
	if err != nil {
		return t, err
	}
	r := csv.NewReader(strings.NewReader(text))
	r.Comma = sep
	r.FieldsPerRecord = -1 // checked below, with a message that names the row
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return t, errors.New("the CSV is empty: want a header row naming the columns, such as order_id,payment_ref,amount")
	}
	if err != nil {
		return t, csvParseError(err)
	}
	seen := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		header[i] = h
		switch first, dup := seen[h]; {
		case h == "":
			return t, fmt.Errorf("column %d of the header row has no name", i+1)
		case dup:
			return t, fmt.Errorf("the header row names column %q twice (columns %d and %d)", h, first+1, i+1)
		}
		seen[h] = i
	}
	if len(header) == 1 && sep == ',' && strings.ContainsAny(header[0], ";\t") {
		return t, fmt.Errorf("the header row %q is one column: if the file is separated by another character, give it, such as csvdecode(file(\"x.csv\"), \";\")", header[0])
	}
	t.header = header
	for n := 1; !headerOnly; n++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return t, csvParseError(err)
		}
		if blank(rec) {
			continue // a spreadsheet's empty row: ;;;
		}
		if len(rec) != len(header) {
			line, _ := r.FieldPos(0)
			return t, fmt.Errorf("row %d (line %d) has %d fields, but the header row names %d columns (%s)",
				n, line, len(rec), len(header), strings.Join(header, string(sep)))
		}
		t.rows = append(t.rows, rec)
	}
	return t, nil
}

// csvSeparator is the separator given, or the one the header line uses:
// ";" or a tab when it has that and no comma, "," otherwise.
func csvSeparator(given []cty.Value, text string) (rune, error) {
	if len(given) > 1 {
		return 0, errors.New("csvdecode takes the text and at most one separator")
	}
	if len(given) == 1 {
		s := given[0].AsString()
		r, size := utf8.DecodeRuneInString(s)
		if size == 0 || size != len(s) || r == '"' || r == '\r' || r == '\n' || r == utf8.RuneError {
			return 0, fmt.Errorf("separator %q: want one character, such as \",\", \";\" or \"\\t\"", s)
		}
		return r, nil
	}
	line, _, _ := strings.Cut(text, "\n")
	switch {
	case strings.Contains(line, ","):
		return ',', nil
	case strings.Contains(line, ";"):
		return ';', nil
	case strings.Contains(line, "\t"):
		return '\t', nil
	}
	return ',', nil
}

func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

func csvParseError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("line %d, column %d: %v", pe.Line, pe.Column, pe.Err)
	}
	return err
}
