/** The tool's name and version, as recorded in every report (a test holds it equal to package.json). */
export const TOOL_NAME = 'stampede';
export const TOOL_VERSION = '0.1.0';
