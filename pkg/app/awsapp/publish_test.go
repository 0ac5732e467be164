package awsapp

import (
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPublishConfigFromEnv(t *testing.T) {
	long := strings.Repeat("b", 257)
	for _, c := range []struct {
		name    string
		env     map[string]string
		want    PublishConfig
		wantErr string
	}{
		{"nothing set: the default bus", nil, PublishConfig{EventBus: "default"}, ""},
		{"a bus name", map[string]string{"MOBIUS_EVENT_BUS": "mobius-prod"}, PublishConfig{EventBus: "mobius-prod"}, ""},
		{"a bus ARN", map[string]string{"MOBIUS_EVENT_BUS": "arn:aws:events:eu-west-1:123456789012:event-bus/central"},
			PublishConfig{EventBus: "arn:aws:events:eu-west-1:123456789012:event-bus/central"}, ""},
		{"no table or key needed, settings read", map[string]string{"MOBIUS_LOG_LEVEL": "warn", "MOBIUS_DEADLINE_MARGIN": "2s", "MOBIUS_AWS_ATTEMPT_TIMEOUT": "500ms"},
			PublishConfig{EventBus: "default", LogLevel: slog.LevelWarn, DeadlineMargin: 2 * time.Second, AttemptTimeout: 500 * time.Millisecond}, ""},
		{"a bus name with a space", map[string]string{"MOBIUS_EVENT_BUS": "my bus"}, PublishConfig{}, "MOBIUS_EVENT_BUS"},
		{"a bus name too long", map[string]string{"MOBIUS_EVENT_BUS": long}, PublishConfig{}, "MOBIUS_EVENT_BUS"},
		{"another service's ARN", map[string]string{"MOBIUS_EVENT_BUS": "arn:aws:sqs:eu-west-1:123456789012:q"}, PublishConfig{}, "MOBIUS_EVENT_BUS"},
		{"bad log level", map[string]string{"MOBIUS_LOG_LEVEL": "loud"}, PublishConfig{}, "MOBIUS_LOG_LEVEL"},
		{"bad deadline margin", map[string]string{"MOBIUS_DEADLINE_MARGIN": "2m"}, PublishConfig{}, "MOBIUS_DEADLINE_MARGIN"},
		{"bad attempt timeout", map[string]string{"MOBIUS_AWS_ATTEMPT_TIMEOUT": "1ms"}, PublishConfig{}, "MOBIUS_AWS_ATTEMPT_TIMEOUT"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := PublishConfigFromEnv(env(c.env))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want one saying %q", err, c.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}
