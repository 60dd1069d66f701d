"""placeholder"""
def encode_video(): pass
