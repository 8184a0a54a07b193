/** Globs over test IDs: `*` matches within one `/`-separated part, `**` across parts. */
export function globToRegExp(glob: string): RegExp {
  const body = glob
    .split('**')
    .map((part) =>
      part
        .split('*')
        .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('[^/]*'),
    )
    .join('.*');
  return new RegExp(`^${body}$`);
}

export function matchesAny(id: string, globs: RegExp[]): boolean {
  return globs.some((g) => g.test(id));
}
