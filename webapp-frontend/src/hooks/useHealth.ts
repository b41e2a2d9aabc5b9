import { useEffect, useState } from 'react';
import { fetchHealth } from '../api/client';
import type { HealthResponse } from '../api/contract';

/** GET /api/health once on load: undefined while asking, null when the server cannot tell. */
export function useHealth(): HealthResponse | null | undefined {
  const [health, setHealth] = useState<HealthResponse | null | undefined>(undefined);
  useEffect(() => {
    const controller = new AbortController();
    fetchHealth(controller.signal).then((answer) => {
      if (!controller.signal.aborted) setHealth(answer);
    });
    return () => controller.abort();
  }, []);
  return health;
}
