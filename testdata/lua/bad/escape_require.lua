-- want: escape_require.lua:3: module ../jobs not found

require "../jobs"
