"""The knowledge base (智能知识库): articles, their lifecycle and versions, import, search."""
