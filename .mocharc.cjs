// The project's own tests (test/*.test.ts), run through tsx so no build step is needed.
module.exports = {
  spec: ['test/**/*.test.ts'],
  'node-option': ['import=tsx'],
  timeout: 60000,
  reporter: 'dot',
};
