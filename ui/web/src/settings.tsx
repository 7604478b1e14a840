// The viewer's preferences: refresh interval and theme, kept in localStorage. The API token is
// kept by the API client itself (api.ts), which reads it on every request.

import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';

export type Theme = 'system' | 'light' | 'dark';

export interface Settings {
  /** How often lists and views refresh, in milliseconds. */
  refreshMs: number;
  theme: Theme;
}

export const REFRESH_CHOICES_MS = [2000, 5000, 10_000, 30_000, 60_000] as const;
export const DEFAULT_SETTINGS: Settings = { refreshMs: 5000, theme: 'system' };

const KEY = 'linkloom.settings';

export function loadSettings(): Settings {
  try {
    const raw = localStorage.getItem(KEY);
    if (!raw) return DEFAULT_SETTINGS;
    const parsed = JSON.parse(raw) as Partial<Settings>;
    const refreshMs =
      typeof parsed.refreshMs === 'number' && parsed.refreshMs >= 1000 && parsed.refreshMs <= 600_000
        ? parsed.refreshMs
        : DEFAULT_SETTINGS.refreshMs;
    const theme = parsed.theme === 'light' || parsed.theme === 'dark' ? parsed.theme : 'system';
    return { refreshMs, theme };
  } catch {
    return DEFAULT_SETTINGS;
  }
}

/** Sets the theme on <html>; the stylesheet reads `data-theme` (absent: follow the system). */
export function applyTheme(theme: Theme): void {
  const root = document.documentElement;
  if (theme === 'system') delete root.dataset.theme;
  else root.dataset.theme = theme;
}

interface SettingsContextValue {
  settings: Settings;
  update: (change: Partial<Settings>) => void;
}

const SettingsContext = createContext<SettingsContextValue | null>(null);

export function SettingsProvider({ children }: { children: ReactNode }) {
  const [settings, setSettings] = useState<Settings>(loadSettings);
  useEffect(() => applyTheme(settings.theme), [settings.theme]);
  const update = useCallback((change: Partial<Settings>) => {
    setSettings((current) => {
      const next = { ...current, ...change };
      try {
        localStorage.setItem(KEY, JSON.stringify(next));
      } catch {
        // private mode or full storage: keep the setting for this visit only
      }
      return next;
    });
  }, []);
  const value = useMemo(() => ({ settings, update }), [settings, update]);
  return <SettingsContext.Provider value={value}>{children}</SettingsContext.Provider>;
}

export function useSettings(): SettingsContextValue {
  const value = useContext(SettingsContext);
  if (!value) throw new Error('useSettings outside SettingsProvider');
  return value;
}
