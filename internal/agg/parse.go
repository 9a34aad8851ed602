package agg

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Spec is one aggregate of --agg.
type Spec struct {
	// Expr is the expression exactly as the user gave it; it names the
	// output column.
	Expr string
	// Func is count, sum, avg, min, max, count_distinct,
	// approx_count_distinct, or a percentile as written in lower case
	// (p50, p99.9).
	Func string
	// Column is the argument's column name; "" for count(*).
	Column string
	// Quantile is NN/100 for pNN, 0 otherwise.
	Quantile float64
}

// ConfigError is a usage error in the aggregation flags: a bad expression,
// an unknown column, or an aggregate that does not apply to a column's type.
type ConfigError struct {
	Flag   string // --agg or --group-by
	Value  string // the expression or column as given
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("%s %q: %s", e.Flag, e.Value, e.Reason)
}

func aggError(expr, format string, args ...any) *ConfigError {
	return &ConfigError{Flag: "--agg", Value: expr, Reason: fmt.Sprintf(format, args...)}
}

var funcs = map[string]bool{
	"count": true, "sum": true, "avg": true, "min": true, "max": true,
	"count_distinct": true, "approx_count_distinct": true,
}

// Parse reads one --agg expression: count(*), count(col), sum(col),
// avg(col), min(col), max(col), count_distinct(col) (also count(distinct
// col)), approx_count_distinct(col) or pNN(col) with 0 < NN <= 100
// (p50, p95, p99.9). Function names are case-insensitive, blanks are allowed
// around the parts, and col is a name or a double-quoted identifier ("" for
// a quote inside).
func Parse(expr string) (Spec, error) {
	sp := Spec{Expr: expr}
	s := strings.TrimSpace(expr)
	i := 0
	for i < len(s) && (isIdentChar(s[i]) || s[i] == '.') {
		i++
	}
	name := strings.ToLower(s[:i])
	s = strings.TrimSpace(s[i:])
	if name == "" || !strings.HasPrefix(s, "(") || !strings.HasSuffix(s, ")") {
		return sp, aggError(expr, "want FUNCTION(COLUMN), such as sum(amount) or count(*)")
	}
	arg := strings.TrimSpace(s[1 : len(s)-1])
	switch {
	case funcs[name]:
		sp.Func = name
	case name[0] == 'p':
		q, ok := parsePercent(name[1:])
		if !ok {
			return sp, aggError(expr, "a percentile is pNN with 0 < NN <= 100, such as p50, p95 or p99.9")
		}
		sp.Func, sp.Quantile = name, q
	default:
		return sp, aggError(expr, "unknown function %q (want count, sum, avg, min, max, count_distinct, approx_count_distinct or pNN)", name)
	}
	if arg == "*" {
		if sp.Func != "count" {
			return sp, aggError(expr, "only count takes *")
		}
		return sp, nil
	}
	if sp.Func == "count" && len(arg) > 8 && strings.EqualFold(arg[:8], "distinct") && !isIdentChar(arg[8]) {
		sp.Func = "count_distinct"
		arg = strings.TrimSpace(arg[8:])
	}
	if strings.EqualFold(arg, "distinct") {
		return sp, aggError(expr, "missing column after distinct")
	}
	col, err := parseIdent(arg)
	if err != nil {
		return sp, aggError(expr, "%v", err)
	}
	sp.Column = col
	return sp, nil
}

func parsePercent(s string) (float64, bool) {
	if s == "" || s[0] < '0' || s[0] > '9' || s[len(s)-1] == '.' {
		return 0, false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && c != '.' {
			return 0, false
		}
	}
	p, err := strconv.ParseFloat(s, 64)
	if err != nil || p <= 0 || p > 100 {
		return 0, false
	}
	return p / 100, true
}

func isIdentChar(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// parseIdent reads a column name: "quoted" (with "" for ") or bare.
func parseIdent(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("missing column name")
	}
	if s[0] == '"' {
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			if s[i] != '"' {
				b.WriteByte(s[i])
				continue
			}
			if i+1 < len(s) && s[i+1] == '"' {
				b.WriteByte('"')
				i++
				continue
			}
			if i != len(s)-1 {
				return "", fmt.Errorf("unexpected %q after the quoted column name", s[i+1:])
			}
			if b.Len() == 0 {
				return "", fmt.Errorf("empty column name")
			}
			return b.String(), nil
		}
		return "", fmt.Errorf("unterminated quoted column name")
	}
	for i, r := range s {
		if r == utf8.RuneError || !(r == '_' || r == '$' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return "", fmt.Errorf("unexpected %q in column name (quote it with double quotes)", s[i:])
		}
	}
	if unicode.IsDigit(rune(s[0])) || s[0] == '$' {
		return "", fmt.Errorf("column name %q must not start with %q (quote it with double quotes)", s, s[:1])
	}
	return s, nil
}
