package lambdainvoke

import (
	"fmt"
	"regexp"
)

// functionNamePattern is the pattern Lambda documents for Invoke's
// FunctionName: a name, a partial ARN or a full ARN, each with an optional
// qualifier.
const functionNamePattern = `(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?`

// qualifierPattern is the pattern of Invoke's Qualifier.
const qualifierPattern = `(|[a-zA-Z0-9$_-]+)`

var (
	functionNameRE = regexp.MustCompile(`^(?:arn:(?:aws[a-zA-Z-]*)?:lambda:)?(?:(?P<region>[a-z]{2}(?:-gov)?-[a-z]+-\d):)?(?:(?P<account>\d{12}):)?(?:function:)?(?P<name>[a-zA-Z0-9\-_.]+)(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9\-_]+))?$`)
	qualifierRE    = regexp.MustCompile(`^[a-zA-Z0-9$_-]{1,128}$`)
	regionRE       = regexp.MustCompile(`^[a-z]{2}(?:-gov)?-[a-z]+-\d$`)
)

// Lambda's limits on the name forms.
const (
	maxFunctionNameLen = 170 // the whole FunctionName, ARN included
	maxNameLen         = 64  // the name itself
)

// functionName is a parsed FunctionName.
type functionName struct {
	region, account, name, qualifier string
}

// parseFunctionName parses s, or returns the ValidationException message
// Lambda answers for it.
func parseFunctionName(s string) (functionName, string) {
	invalid := func(constraint string) (functionName, string) {
		return functionName{}, fmt.Sprintf("1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint: %s", clip(s), constraint)
	}
	if len(s) > maxFunctionNameLen {
		return invalid(fmt.Sprintf("Member must have length less than or equal to %d", maxFunctionNameLen))
	}
	m := functionNameRE.FindStringSubmatch(s)
	if m == nil {
		return invalid("Member must satisfy regular expression pattern: " + functionNamePattern)
	}
	f := functionName{
		region:    m[functionNameRE.SubexpIndex("region")],
		account:   m[functionNameRE.SubexpIndex("account")],
		name:      m[functionNameRE.SubexpIndex("name")],
		qualifier: m[functionNameRE.SubexpIndex("qualifier")],
	}
	if len(f.name) > maxNameLen {
		return invalid(fmt.Sprintf("the function name must have length less than or equal to %d", maxNameLen))
	}
	return f, ""
}

func validQualifier(q string) bool { return qualifierRE.MatchString(q) }
