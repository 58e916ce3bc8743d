"""Label photos in AWS Lambda; deployed on its own, apart from the site."""
