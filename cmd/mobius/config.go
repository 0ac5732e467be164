package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/mobius-secrets/mobius/internal/atomicfile"
)

// fileConfig is the per-user config file written by `mobius serve` on its
// first start, so that the CLI finds the local server and its key.
type fileConfig struct {
	Endpoint string `json:"endpoint,omitempty"`
	Project  string `json:"project,omitempty"`
	APIKey   string `json:"api_key,omitempty"`
	// Data is the data folder of the local server that wrote the file (its
	// key belongs to that server's store).
	Data string `json:"data,omitempty"`
}

// configDir returns the per-user config folder, as os.UserConfigDir does but
// reading the given environment: $XDG_CONFIG_HOME, else the platform's.
func configDir(getenv func(string) string) (string, error) {
	switch runtime.GOOS {
	case "windows":
		if d := getenv("AppData"); d != "" {
			return d, nil
		}
		return "", errors.New("%AppData% is not set")
	case "darwin", "ios":
		if d := getenv("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
			return d, nil
		}
		if h := getenv("HOME"); h != "" {
			return filepath.Join(h, "Library", "Application Support"), nil
		}
		return "", errors.New("$HOME is not set")
	default:
		if d := getenv("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
			return d, nil
		}
		if h := getenv("HOME"); h != "" {
			return filepath.Join(h, ".config"), nil
		}
		return "", errors.New("neither $XDG_CONFIG_HOME nor $HOME is set")
	}
}

// configPath returns where the config file lives.
func configPath(getenv func(string) string) (string, error) {
	d, err := configDir(getenv)
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "mobius", "config.json"), nil
}

// loadConfig reads the config file; nil if there is none (or no config
// folder to look in).
func loadConfig(getenv func(string) string) (*fileConfig, error) {
	path, err := configPath(getenv)
	if err != nil {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, usagef("reading the config file: %v", err)
	}
	var cfg fileConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, usagef("the config file %s is not valid JSON; fix or remove it", path)
	}
	return &cfg, nil
}

// saveConfig writes the config file atomically, mode 0600 in a 0700 folder,
// and returns its path.
func saveConfig(getenv func(string) string, cfg fileConfig) (string, error) {
	path, err := configPath(getenv)
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return "", err
	}
	if err := atomicfile.Write(path, append(data, '\n'), true); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}
