package sqlstore

import (
	"strings"

	"github.com/go-llm-proxy/llmproxy"
)

// conds builds a query's WHERE clause: conditions joined with AND, each
// with its ? placeholder's argument (none for a condition without one).
type conds struct {
	where []string
	args  []any
}

// add adds cond, whose placeholders take args.
func (c *conds) add(cond string, args ...any) {
	c.where = append(c.where, cond)
	c.args = append(c.args, args...)
}

// dims adds the dimensions f selects: key, assignment, model alias and
// connection (the ledger's and the daily rollups' column names).
func (c *conds) dims(f llmproxy.UsageFilter) {
	if f.KeyID != "" {
		c.add("key_id = ?", f.KeyID)
	}
	if f.AssignmentID != "" {
		c.add("assignment_id = ?", f.AssignmentID)
	}
	if f.Model != "" {
		c.add("model = ?", f.Model)
	}
	if f.ConnectionID != "" {
		c.add("connection_id = ?", f.ConnectionID)
	}
}

// clause is " WHERE a AND b", or "" when there is no condition.
func (c *conds) clause() string {
	if len(c.where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(c.where, " AND ")
}
