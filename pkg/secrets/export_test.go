package secrets

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

// JSONForm returns the record it holds in the JSON form written before
// records were CBOR (instants as Unix milliseconds, digests in base64),
// for tests of data files written by earlier versions. It knows the
// records of a secret, a name (a secret's or an alias's), a version and
// an event.
func JSONForm(it kv.Item) ([]byte, error) {
	var rec any
	switch {
	case strings.HasPrefix(it.Partition, "E#"):
		rec = &eventRec{}
	case strings.HasPrefix(it.Sort, "S#"):
		rec = &secretRec{}
	case strings.HasPrefix(it.Sort, "N#"):
		var probe aliasProbe
		if err := decodeRecord(it.Value, &probe); err != nil {
			return nil, err
		}
		rec = &secretRec{}
		if probe.AliasOf != "" {
			rec = &aliasRec{}
		}
	case strings.HasPrefix(it.Sort, "V#"):
		rec = &versionRec{}
	default:
		return nil, fmt.Errorf("no JSON form known for %s", it.Key)
	}
	if legacyJSON(it.Value) {
		return nil, fmt.Errorf("%s is in JSON already", it.Key)
	}
	if err := decodeRecord(it.Value, rec); err != nil {
		return nil, err
	}
	return json.Marshal(rec)
}
