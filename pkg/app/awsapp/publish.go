package awsapp

import (
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"
)

// PublishConfig configures the event publisher, the function that sends
// the table's change events to EventBridge. It reads nothing of the table
// (the stream gives it the items) and uses no key, so it needs neither
// MOBIUS_TABLE nor MOBIUS_KMS_KEY_ID.
type PublishConfig struct {
	// EventBus (MOBIUS_EVENT_BUS) is the name or ARN of the event bus;
	// DefaultEventBus if unset.
	EventBus       string
	LogLevel       slog.Level    // MOBIUS_LOG_LEVEL
	DeadlineMargin time.Duration // MOBIUS_DEADLINE_MARGIN, as Config's
	AttemptTimeout time.Duration // MOBIUS_AWS_ATTEMPT_TIMEOUT, as Config's
}

// DefaultEventBus is the account's default event bus.
const DefaultEventBus = "default"

// An event bus is named by its name (letters, digits, . _ - /, at most
// 256) or its ARN.
var eventBusName = regexp.MustCompile(`^([A-Za-z0-9._/-]{1,256}|arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/[A-Za-z0-9._/-]{1,256})$`)

// PublishConfigFromEnv reads MOBIUS_EVENT_BUS, MOBIUS_LOG_LEVEL,
// MOBIUS_DEADLINE_MARGIN and MOBIUS_AWS_ATTEMPT_TIMEOUT through getenv.
func PublishConfigFromEnv(getenv func(string) string) (PublishConfig, error) {
	cfg := PublishConfig{EventBus: strings.TrimSpace(getenv("MOBIUS_EVENT_BUS"))}
	if cfg.EventBus == "" {
		cfg.EventBus = DefaultEventBus
	}
	if !eventBusName.MatchString(cfg.EventBus) {
		return PublishConfig{}, fmt.Errorf("MOBIUS_EVENT_BUS=%q: want an event bus name (letters, digits, . _ - /, at most 256) or an event bus ARN", cfg.EventBus)
	}
	var err error
	if cfg.LogLevel, err = LogLevel(getenv); err != nil {
		return PublishConfig{}, err
	}
	if cfg.DeadlineMargin, err = duration(getenv, "MOBIUS_DEADLINE_MARGIN", time.Millisecond, MaxDeadlineMargin); err != nil {
		return PublishConfig{}, err
	}
	if cfg.AttemptTimeout, err = duration(getenv, "MOBIUS_AWS_ATTEMPT_TIMEOUT", MinAttemptTimeout, MaxAttemptTimeout); err != nil {
		return PublishConfig{}, err
	}
	return cfg, nil
}
