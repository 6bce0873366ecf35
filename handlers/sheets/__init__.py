"""The department's spreadsheets: reading them as offices make them, the imports, and the export workbook."""
