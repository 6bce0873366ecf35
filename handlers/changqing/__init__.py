"""常青藤: the retired-cadre volunteer corps — the call and sign-up, groups and commitments, 实绩, projects."""
