import { useEffect, useState } from 'react';
import type { MatchResponse } from '../api/contract';
import { cropFaces } from '../lib/crop';

/** Thumbnails of each face of the response, cut from the uploaded photo (null while cutting). */
export function useFaceCrops(photo: Blob | null, response: MatchResponse): (string | null)[] {
  const [crops, setCrops] = useState<(string | null)[]>(() => response.faces.map(() => null));
  useEffect(() => {
    let live = true;
    setCrops(response.faces.map(() => null));
    if (photo) {
      cropFaces(photo, response.faces, response.image).then((made) => {
        if (live) setCrops(made);
      });
    }
    return () => {
      live = false;
    };
  }, [photo, response]);
  return crops;
}
