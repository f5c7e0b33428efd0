/**
 * Which kind of view the addons under test hand out. `npm run test:copy-views` builds both addons as a runtime that
 * refuses external buffers would leave them (view() returns a copy that shares nothing) and runs the view contract
 * against those builds with this set; everywhere else views are zero-copy and co-own the native bytes.
 */
export const copyViews = process.env.NAPI_OWNERSHIP_EXPECT_COPY_VIEWS === '1';
